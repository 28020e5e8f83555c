"""`twilio-emulator` CLI: `[serve]` (the default) runs the emulator; `inbound` posts one message.

Composition only; behaviour lives in `app`, `server`, `dispatcher` and `inbound`. Flags fall back
on TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN. SIGTERM/SIGINT stop the server gracefully.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

from notifier.twilio_emulator import inbound
from notifier.twilio_emulator.callback_plan import (
    DEFAULT_DELAYS,
    CallbackConfigError,
    CallbackMode,
    CallbackRule,
    CallbackSettings,
    Shuffle,
)
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from notifier.twilio_emulator.logline import log_call, mask_phone, setup_logging
from notifier.twilio_emulator.server import EmulatorServer

log = logging.getLogger("notifier.twilio_emulator")
DEFAULT_PORT = 8089
DEFAULT_MPS = 80  # WhatsApp's default per-number rate
COMMANDS = ("serve", "inbound")


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="twilio-emulator",
        description="Emulates Twilio's Messages API for development and tests (never deploy).",
    )
    commands = parser.add_subparsers(dest="command", metavar="{serve,inbound}")
    serve = commands.add_parser("serve", help="run the emulator (the default command)")
    add_server_arguments(serve, env)
    incoming = commands.add_parser("inbound", help="post one signed incoming message, then exit")
    inbound.add_arguments(incoming, env)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in (*COMMANDS, "-h", "--help"):
        args.insert(0, "serve")  # `twilio-emulator --port 8089` keeps meaning `serve`
    namespace = parser.parse_args(args)
    if namespace.command == "serve":
        namespace.callback_settings = _callback_settings(namespace, serve)
    return namespace


def add_server_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
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
        help="Basic-auth password and callback signing key ($TWILIO_AUTH_TOKEN or dev token)",
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
    group = parser.add_argument_group("status callbacks")
    group.add_argument(
        "--callbacks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="post signed status callbacks to each message's StatusCallback (default: on)",
    )
    group.add_argument("--callback-mode", choices=[m.value for m in CallbackMode], default="normal")
    group.add_argument("--callback-shuffle", choices=[s.value for s in Shuffle], default="off")
    group.add_argument("--callback-duplicate", action="store_true", help="post each one twice")
    group.add_argument(
        "--callback-speed", type=float, default=1.0, help="divides every delay (default 1)"
    )
    group.add_argument(
        "--callback-delay",
        action="append",
        default=[],
        type=_pair,
        metavar="STATUS=SECONDS",
        help=f"seconds after acceptance; defaults {dict(DEFAULT_DELAYS)}",
    )
    group.add_argument(
        "--callback-rule",
        action="append",
        default=[],
        type=_pair,
        metavar="NUMBER=MODE",
        help="a recipient's own mode, e.g. +447700900123=undelivered",
    )
    group.add_argument(
        "--callback-workers", type=_positive, default=4, help="parallel HTTP senders (default 4)"
    )


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {raw!r}")
    return int(raw)


def _pair(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {raw!r}")
    return key.strip(), value.strip()


def _callback_settings(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> CallbackSettings:
    try:
        delays = {status: float(seconds) for status, seconds in args.callback_delay}
        args.callback_rules = {
            to: CallbackRule.from_json({"mode": mode}) for to, mode in args.callback_rule
        }
        return CallbackSettings().updated(
            {
                "enabled": args.callbacks,
                "mode": args.callback_mode,
                "shuffle": args.callback_shuffle,
                "duplicate": args.callback_duplicate,
                "speed": args.callback_speed,
                "delays": delays,
            }
        )
    except (ValueError, CallbackConfigError) as exc:
        parser.error(str(exc))


def install_signal_handlers() -> threading.Event:
    """SIGTERM/SIGINT -> stop.set(); the main thread waits on it."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def serve(args: argparse.Namespace) -> None:
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
        callbacks=args.callback_settings,
        callback_rules=args.callback_rules,
        callback_workers=args.callback_workers,
    )
    with server:
        dev_token = args.auth_token if args.auth_token == DEFAULT_AUTH_TOKEN else None
        startup = server.config.to_json()
        rules = startup.pop("callback_rules")
        assert isinstance(rules, dict)
        startup["callback_rules"] = {mask_phone(to): rule for to, rule in rules.items()}
        log.info(
            "twilio emulator listening",
            extra={"url": server.url, "auth_token": dev_token, **startup},
        )
        stop.wait()
        log.info("stopping")
    log.info("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, os.environ)
    if args.command == "inbound":
        sys.exit(inbound.run(args))
    serve(args)


if __name__ == "__main__":
    main()
