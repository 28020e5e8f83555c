"""Group commit for accepts: concurrent requests share one INSERT and one commit.

Each gRPC worker hands its validated command to `AcceptWriter.insert` and waits;
writer threads take everything queued (up to a batch) and commit it in one
statement. Under light load a batch is a single request, so nothing waits for
a batch to fill; under heavy load batches grow while the previous one commits,
which is what lets durable accepts keep up with the gRPC server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import psycopg2
import psycopg2.errors

from notifier.common.errors import NotFound, NotifierError, TransientError
from notifier.gateway.model import AcceptCommand, Existing, Inserted

log = logging.getLogger(__name__)

# A request never waits longer than this for its batch (the statement timeout is 30 s).
_WAIT_SECONDS = 60.0


class BatchStore(Protocol):
    def insert_many(self, commands: Sequence[AcceptCommand]) -> list[Inserted | Existing]: ...


@dataclass(slots=True)
class _Pending:
    command: AcceptCommand
    done: threading.Event = field(default_factory=threading.Event)
    result: Inserted | Existing | None = None
    error: BaseException | None = None


class AcceptWriter:
    def __init__(self, store: BatchStore, writers: int = 2, max_batch: int = 256) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"accept-writer-{n}", daemon=True)
            for n in range(writers)
        ]

    def start(self) -> AcceptWriter:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Commits what is queued, then ends the writer threads."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout=_WAIT_SECONDS)

    def insert(self, command: AcceptCommand) -> Inserted | Existing:
        """Returns once the command's batch is committed (or raises its error)."""
        pending = _Pending(command)
        with self._ready:
            if self._stopping:
                raise TransientError("the gateway is shutting down; retry on another replica")
            self._queue.append(pending)
            self._ready.notify()
        if not pending.done.wait(_WAIT_SECONDS):
            raise TransientError("the database did not commit the message in time; retry")
        error = pending.error
        if isinstance(error, TransientError):
            # Shared by the whole batch: each request raises its own copy.
            raise TransientError(str(error)) from error
        if isinstance(error, NotifierError):
            raise error
        if error is not None:
            raise RuntimeError("storing the message failed") from error
        assert pending.result is not None
        return pending.result

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._queue or self._stopping)
                if not self._queue:
                    return
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        try:
            results = self._store.insert_many([p.command for p in batch])
        except psycopg2.Error as exc:
            if len(batch) > 1:
                # One bad row (say, a template deleted a moment ago) fails the whole
                # statement; retry one by one so only that request gets the error.
                log.warning("accept batch failed; retrying one by one", extra={"count": len(batch)})
                for pending in batch:
                    self._write([pending])
            elif isinstance(exc, psycopg2.errors.ForeignKeyViolation):
                name = batch[0].command.template.name
                _finish(batch[0], error=NotFound(f"template_id: no template named {name!r}"))
            else:
                _finish(batch[0], error=exc)
            return
        except Exception as exc:
            # Each waiting request reports it (the interceptor logs it under a ref).
            for pending in batch:
                _finish(pending, error=exc)
            return
        for pending, result in zip(batch, results, strict=True):
            _finish(pending, result=result)


def _finish(
    pending: _Pending,
    result: Inserted | Existing | None = None,
    error: BaseException | None = None,
) -> None:
    pending.result = result
    pending.error = error
    pending.done.set()
