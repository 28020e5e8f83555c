"""Log lines off the request path: callers queue records; one thread formats them with
the handlers `setup_logging` installed and writes many lines per system call.

A gRPC worker then never waits on the stdout lock or a write, nor hands the GIL over
around one. Lines still queued when the process is killed outright are lost, so the
fault point flushes first; `close()` (atexit) writes everything that is queued.
"""

from __future__ import annotations

import atexit
import io
import logging
import queue
import threading
from collections.abc import Callable
from typing import TextIO

# At most this many records are formatted before their lines are written out, and
# the thread waits this long after a write, so lines go out in batches under load.
_BATCH = 256
_LINGER_SECONDS = 0.005
_FLUSH_SECONDS = 5.0


class _Enqueue(logging.Handler):
    """The handler on the request path: filters (in the caller's context) and queues;
    `flush()` waits until the writer thread has written everything queued."""

    def __init__(self, records: queue.SimpleQueue[object], flush: Callable[[], None]) -> None:
        super().__init__()
        self._records = records
        self._flush = flush

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: SimpleQueue.put is atomic.
        if not self.filter(record):
            return False
        if record.args:
            # Freeze the message now: the arguments may change before it is formatted.
            record.msg = record.getMessage()
            record.args = None
        self._records.put(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self._records.put(record)

    def flush(self) -> None:
        self._flush()


class _Flush:
    """A marker: set once every record queued before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class QueuedLogging:
    """Moves the root logger's handlers behind a queue; `install()` returns self."""

    def __init__(self, root: logging.Logger | None = None) -> None:
        self._root = root or logging.getLogger()
        self._records: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._handlers: list[logging.Handler] = []
        # (handler, the stream it wrote to, the buffer it writes to now)
        self._streams: list[tuple[logging.StreamHandler[TextIO], TextIO, io.StringIO]] = []
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._linger = threading.Event()  # never set: a sleep that is not time.sleep

    def install(self) -> QueuedLogging:
        self._handlers = list(self._root.handlers)
        for handler in self._handlers:
            if isinstance(handler, logging.StreamHandler):
                # Lines collect in a buffer; the thread writes them out per batch.
                buffer = io.StringIO()
                self._streams.append((handler, handler.stream, buffer))
                handler.setStream(buffer)
        self._root.handlers[:] = [_Enqueue(self._records, self.flush)]
        self._thread.start()
        atexit.register(self.close)
        return self

    def flush(self, timeout: float = _FLUSH_SECONDS) -> None:
        """Returns once every record logged so far is written (or `timeout` passed)."""
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            marker = _Flush()
            self._records.put(marker)
            marker.done.wait(timeout)

    def close(self) -> None:
        """Writes what is queued, stops the thread and puts the handlers back."""
        atexit.unregister(self.close)
        if self._thread.is_alive():
            self._records.put(_STOP)
            self._thread.join(_FLUSH_SECONDS)
        self._root.handlers[:] = self._handlers
        for handler, stream, _buffer in self._streams:
            handler.setStream(stream)

    def _run(self) -> None:
        while True:
            batch = [self._records.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            markers: list[_Flush] = []
            stop = False
            for item in batch:
                if isinstance(item, logging.LogRecord):
                    self._handle(item)
                elif isinstance(item, _Flush):
                    markers.append(item)
                elif item is _STOP:
                    stop = True
            self._write_out()
            for marker in markers:
                marker.done.set()
            if stop:
                return
            if len(batch) < _BATCH and not markers:
                self._linger.wait(_LINGER_SECONDS)

    def _handle(self, record: logging.LogRecord) -> None:
        for handler in self._handlers:
            if record.levelno >= handler.level:
                handler.handle(record)

    def _write_out(self) -> None:
        for _handler, stream, buffer in self._streams:
            text = buffer.getvalue()
            if not text:
                continue
            buffer.seek(0)
            buffer.truncate()
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                # stdout is gone (closed pipe): drop the lines, as logging itself would.
                continue
