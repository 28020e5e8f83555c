import json
import logging

from notifier.common.logging import JsonFormatter, PhoneMaskFilter, mask_phones


def _format(record: logging.LogRecord) -> dict:
    PhoneMaskFilter().filter(record)
    return json.loads(JsonFormatter("test").format(record))


def _record(msg: str, args: tuple = (), **extra) -> logging.LogRecord:
    record = logging.LogRecord("notifier.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_lines_are_json_with_context() -> None:
    entry = _format(_record("message accepted", message_id=42, template="order_confirmation"))
    assert entry["msg"] == "message accepted"
    assert entry["service"] == "test"
    assert entry["level"] == "INFO"
    assert entry["message_id"] == 42
    assert entry["template"] == "order_confirmation"


def test_phone_numbers_are_masked_in_message_args_and_extras() -> None:
    entry = _format(_record("to %s", ("+447700900123",), to="whatsapp:+15005550006"))
    line = json.dumps(entry)
    assert "447700900123" not in line
    assert "15005550006" not in line
    assert "+44********23" in entry["msg"]


def test_ids_and_counts_are_not_mistaken_for_phones() -> None:
    assert mask_phones("message 1234567890 offset 99") == "message 1234567890 offset 99"
