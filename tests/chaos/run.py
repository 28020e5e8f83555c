"""`python -m tests.chaos.run --messages 10000` (`make chaos`): the full chaos run.

Prints the summary tables and exits 1 when a guarantee was broken. The processes' logs
and the broker's stay in --log-dir for a look afterwards.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tests.chaos import faults
from tests.chaos.harness import ChaosConfig, run_chaos


def main(argv: list[str] | None = None) -> int:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__)
    parser.add_argument("--messages", type=int, default=defaults.messages)
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="messages offered per second (default %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=defaults.client_threads)
    parser.add_argument(
        "--faults",
        default=",".join(defaults.faults),
        help="comma-separated, in order (default %(default)s)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=defaults.pause_seconds,
        help="seconds between one fault's recovery and the next",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=defaults.settle_seconds,
        help="seconds the pipeline gets to settle after the last load",
    )
    parser.add_argument("--sender-mps", type=int, default=defaults.sender_mps)
    parser.add_argument("--log-dir", type=Path, default=defaults.log_dir)
    args = parser.parse_args(argv)
    chosen = tuple(name.strip() for name in args.faults.split(",") if name.strip())
    unknown = set(chosen) - set(faults.FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(faults.FAULTS)}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    config = ChaosConfig(
        messages=args.messages,
        rate=args.rate,
        client_threads=args.threads,
        faults=chosen,
        pause_seconds=args.pause,
        settle_seconds=args.settle,
        sender_mps=args.sender_mps,
        log_dir=args.log_dir,
    )
    result = run_chaos(config)
    print(result.summary(), flush=True)
    print(f"\nlogs: {config.log_dir.resolve()}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
