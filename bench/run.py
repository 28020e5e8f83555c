"""`make bench`: runs the benchmarks (all, or those named) and prints one table at the end.

    .venv/bin/python bench/run.py [p1 p2 p3 p4 p5 p6 webhook] [--quick] [--keep-logs]
                                  [--soak [--minutes 10]]

`--soak` adds the soak (bench/soak.py) after the benchmarks named, or alone when none is
named; it runs at half of P5's rate when P5 ran before it.

PostgreSQL (durable settings) and Tansu start once per run in a temp directory; every
process is stopped at the end, on errors and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

import p1_accepts
import p2_latency
import p3_sender
import p4_recorder
import p5_pipeline
import p6_end_to_end
import soak
import webhook_ratio
from figures import Figure, machine, table
from harness import Bench, open_bench

BENCHMARKS: dict[str, Callable[[Bench], list[Figure]]] = {
    "p1": p1_accepts.run,
    "p2": p2_latency.run,
    "p3": p3_sender.run,
    "p4": p4_recorder.run,
    "p5": p5_pipeline.run,
    "p6": p6_end_to_end.run,
    "webhook": webhook_ratio.run,
}
RSS_TARGET_MIB = 200.0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    # SIGTERM would end Python without unwinding: turned into Ctrl-C, every process and
    # backend is still stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)}; all by default"
    )
    parser.add_argument("--quick", action="store_true", help="short windows (about 3 minutes)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    parser.add_argument("--soak", action="store_true", help="run the soak too (alone if no NAME)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak's load")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or ([] if args.soak else list(BENCHMARKS))
    started = time.monotonic()
    print(f"machine: {machine()}")
    print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"load average before: {_load()}", flush=True)
    figures: list[Figure] = []
    with open_bench(args.quick, keep=args.keep_logs) as bench:
        for name in names:
            print(f"\n== {name.upper()}: {BENCHMARKS[name].__module__}", flush=True)
            figures += BENCHMARKS[name](bench)
        figures += _memory_figures(bench)
        if args.soak:
            print(f"\n== SOAK: {args.minutes:g} minutes", flush=True)
            figures += soak.run(bench, args.minutes)
        load_samples = bench.monitor.load_samples
    print(
        f"\nload average after: {_load()}; during the run (1-min, every 5 s): "
        f"min {min(load_samples, default=0):.2f}, max {max(load_samples, default=0):.2f}"
    )
    print(f"took {time.monotonic() - started:.0f} s{' (--quick)' if args.quick else ''}\n")
    print(table(figures))
    sys.exit(0 if all(f.passed is not False for f in figures) else 1)


def _memory_figures(bench: Bench) -> list[Figure]:
    """Peak resident memory of each of our processes in P1, P3 and P5 (the webhook and P4
    report their own); gunicorn's workers in P5 as the largest one."""
    figures = []
    for peak in bench.memory:
        label, process = peak.name.split("/", 1)
        if label not in ("p1", "p3", "p5") or process.startswith(("noop", "emulator")):
            continue
        figures.append(
            Figure(
                "RSS",
                f"{process} during {label.upper()} (VmHWM {peak.hwm_mib:.0f}, "
                f"sampled VmRSS {peak.sampled_rss_mib:.0f})",
                peak.peak_mib,
                "MiB",
                target=f"< {RSS_TARGET_MIB:.0f} MiB",
                passed=peak.peak_mib < RSS_TARGET_MIB,
            )
        )
    for tree in bench.tree_memory:
        label, process = tree.name.split("/", 1)
        if label != "p5":
            continue
        figures.append(
            Figure(
                "RSS",
                f"{process} workers during P5 (largest of {tree.children}; "
                f"all together {tree.sum_mib:.0f})",
                tree.max_mib,
                "MiB",
                target=f"< {RSS_TARGET_MIB:.0f} MiB",
                passed=tree.max_mib < RSS_TARGET_MIB,
            )
        )
    return figures


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
