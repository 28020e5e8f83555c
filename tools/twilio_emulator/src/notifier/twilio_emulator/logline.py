"""JSON log lines for the emulator's CLI: one per create call and failed callback, numbers masked.

Self-contained on purpose: the emulator is a dev tool and declares no dependency on our libs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Final

from notifier.twilio_emulator.app import CallOutcome

PHONE: Final = re.compile(r"(?<![0-9A-Za-z])\+?[0-9]{6,15}(?![0-9A-Za-z])")
SERVICE = "twilio-emulator"
CONTEXT_FIELDS: Final = (
    *("status", "code", "twilio_sid", "to", "sender", "message_id"),
    *("callback", "http_status", "attempts", "reason"),
)
STARTUP_FIELDS: Final = (
    *("url", "account_sid", "auth_token", "mps", "latency_ms", "jitter_ms"),
    *("callbacks", "callback_rules"),
)
"""`auth_token` is passed by main only when it is the public dev token."""
call_log = logging.getLogger("notifier.twilio_emulator.calls")


def mask_phone(address: str) -> str:
    """`whatsapp:+447700900123` -> `whatsapp:+44********23`; non-numbers are left alone."""
    return PHONE.sub(_mask_match, address)


def _mask_match(match: re.Match[str]) -> str:
    number = match.group(0)
    plus = "+" if number.startswith("+") else ""
    digits = number.removeprefix("+")
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def log_call(outcome: CallOutcome) -> None:
    """Emit the INFO line for one create call (accepted or rejected)."""
    context = {
        "status": outcome.status,
        "code": outcome.code,
        "twilio_sid": outcome.sid,
        "to": mask_phone(outcome.to) if outcome.to else None,
        "sender": mask_phone(outcome.sender) if outcome.sender else None,
        "message_id": outcome.mid,
    }
    call_log.info("accepted" if outcome.accepted else "rejected", extra=context)


class JsonFormatter(logging.Formatter):
    """`ts level service logger msg` plus the known context fields, one JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "service": SERVICE,
            "logger": record.name,
            "msg": mask_phone(record.getMessage()),
        }
        for name in (*CONTEXT_FIELDS, *STARTUP_FIELDS):
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def setup_logging(level: str = "INFO") -> None:
    """Send every log record to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
