"""`twilio-emulator` CLI: reads flags (or TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN), serves, stops.

Composition only; behaviour lives in `app` and `server`. SIGTERM/SIGINT stop it gracefully.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence

from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from notifier.twilio_emulator.logline import log_call, setup_logging
from notifier.twilio_emulator.server import EmulatorServer

log = logging.getLogger("notifier.twilio_emulator")
DEFAULT_PORT = 8089
DEFAULT_MPS = 80  # WhatsApp's default per-number rate


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="twilio-emulator",
        description="Emulates Twilio's Messages API for development and tests (never deploy).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--account-sid",
        default=env.get("TWILIO_ACCOUNT_SID") or DEFAULT_ACCOUNT_SID,
        help="expected Basic-auth user (default: $TWILIO_ACCOUNT_SID or the dev SID)",
    )
    parser.add_argument(
        "--auth-token",
        default=env.get("TWILIO_AUTH_TOKEN") or DEFAULT_AUTH_TOKEN,
        help="expected Basic-auth password (default: $TWILIO_AUTH_TOKEN or the dev token)",
    )
    parser.add_argument(
        "--mps",
        type=int,
        default=DEFAULT_MPS,
        help="accepted messages per second per sender, 0 = unlimited (default %(default)s)",
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="added before every answer")
    parser.add_argument("--jitter-ms", type=int, default=0, help="up to this much more, random")
    parser.add_argument("--log-level", default=env.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def install_signal_handlers() -> threading.Event:
    """SIGTERM/SIGINT -> stop.set(); the main thread waits on it."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, os.environ)
    setup_logging(args.log_level)
    stop = install_signal_handlers()
    server = EmulatorServer(
        args.host,
        args.port,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        mps=args.mps,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        on_call=log_call,
    )
    with server:
        dev_token = args.auth_token if args.auth_token == DEFAULT_AUTH_TOKEN else None
        log.info(
            "twilio emulator listening",
            extra={"url": server.url, "auth_token": dev_token, **server.config.to_json()},
        )
        stop.wait()
        log.info("stopping")
    log.info("stopped")


if __name__ == "__main__":
    main()
