"""QueuedLogging: lines leave the caller's thread, keep its context, order and format."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from notifier.common.logging import JsonFormatter, PhoneMaskFilter
from notifier.gateway.logqueue import QueuedLogging


class TaggingFilter(logging.Filter):
    """Stands in for RequestIdFilter: reads state of the calling thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.caller = threading.current_thread().name
        return True


@pytest.fixture
def setup() -> Iterator[tuple[logging.Logger, io.StringIO, QueuedLogging]]:
    root = logging.Logger("test-root")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    handler.addFilter(PhoneMaskFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    queued = QueuedLogging(root).install()
    for installed in root.handlers:
        installed.addFilter(TaggingFilter())
    yield root, stream, queued
    queued.close()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_written_in_order_after_a_flush(
    setup: tuple[logging.Logger, io.StringIO, QueuedLogging],
) -> None:
    root, stream, queued = setup
    for n in range(300):
        root.info("message accepted", extra={"message_id": n})
    queued.flush()
    assert [entry["message_id"] for entry in lines(stream)] == list(range(300))


def test_filters_run_in_the_calling_thread_and_phones_are_masked(
    setup: tuple[logging.Logger, io.StringIO, QueuedLogging],
) -> None:
    root, stream, _queued = setup
    worker = threading.Thread(target=root.warning, args=("to %s", "+447700900123"), name="grpc_7")
    worker.start()
    worker.join()
    root.handlers[0].flush()
    [entry] = lines(stream)
    assert entry["caller"] == "grpc_7"
    assert entry["msg"] == "to +44********23"
    assert entry["level"] == "WARNING"


def test_close_writes_what_is_queued_and_puts_the_handlers_back(
    setup: tuple[logging.Logger, io.StringIO, QueuedLogging],
) -> None:
    root, stream, queued = setup
    root.info("last words")
    queued.close()
    assert [entry["msg"] for entry in lines(stream)] == ["last words"]
    assert isinstance(root.handlers[0], logging.StreamHandler)
    root.info("written directly")
    assert lines(stream)[-1]["msg"] == "written directly"


def test_an_exception_keeps_its_traceback(
    setup: tuple[logging.Logger, io.StringIO, QueuedLogging],
) -> None:
    root, stream, queued = setup
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        root.exception("unexpected error", extra={"ref": "abc"})
    queued.flush()
    [entry] = lines(stream)
    assert entry["ref"] == "abc"
    assert "RuntimeError: boom" in str(entry["exc"])
