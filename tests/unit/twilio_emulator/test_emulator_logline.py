"""Phone numbers in the emulator's log lines are masked."""

import json
import logging

from notifier.twilio_emulator.logline import JsonFormatter, mask_phone


def test_mask_keeps_plus_two_leading_and_two_trailing_digits() -> None:
    assert mask_phone("+447700900123") == "+44********23"
    assert mask_phone("whatsapp:+14155238886") == "whatsapp:+14*******86"


def test_mask_leaves_sids_and_short_numbers_alone() -> None:
    sid = "SM0123456789abcdef0123456789abcdef"
    assert mask_phone(sid) == sid
    assert mask_phone("port 8089") == "port 8089"


def test_formatter_writes_one_json_object_with_masked_context() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to +447700900123", None, None)
    record.__dict__.update({"status": 201, "to": "+44********23"})
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "to +44********23"
    assert (line["level"], line["service"], line["status"]) == ("INFO", "twilio-emulator", 201)
