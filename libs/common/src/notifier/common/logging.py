"""JSON log lines on stdout, with phone numbers masked wherever they appear.

`setup_logging(service)` is called once from each `main`. Context goes in
`extra=` (message_id, twilio_sid, template, topic, partition, offset, ...), never
into the message text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from notifier.common.domain.phone import mask

# "+" then 7-15 digits, optionally with a "whatsapp:" prefix before it.
_PHONE = re.compile(r"\+[1-9]\d{6,14}\b")
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def mask_phones(text: str) -> str:
    """Replaces every E.164-looking number in `text` by its masked form."""
    return _PHONE.sub(lambda m: mask(m.group(0)), text)


class PhoneMaskFilter(logging.Filter):
    """Masks phone numbers in a record's message and arguments, for any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = mask_phones(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, then the context."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # The last line of defence: whatever reached the record, no full number
        # leaves the process.
        return mask_phones(json.dumps(entry, default=str, ensure_ascii=False))


def setup_logging(service: str, level: str = "INFO") -> None:
    """Routes all logging (ours and libraries') to JSON lines on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(PhoneMaskFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Twilio SDK logs request bodies (phone numbers, variables) at DEBUG and
    # INFO; keep it to warnings whatever our level is.
    logging.getLogger("twilio").setLevel(logging.WARNING)
