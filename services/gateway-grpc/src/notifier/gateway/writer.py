"""Group commit for accepts: concurrent requests share one INSERT and one commit.

Leader/follower, with no thread of its own: a gRPC worker that hands in a command
while fewer than `writers` batches are being written leads: it commits its command
and everything queued (up to a batch) in one statement, on its own thread. The
others queue as followers; when a leader's batch is done it passes the lead to the
oldest follower still queued. Under light load a batch is a single request and no
other thread is woken; under heavy load batches grow while the previous ones
commit, which is what lets durable accepts keep up with the gRPC server.
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
from notifier.gateway.model import Accept, AcceptCommand, AcceptOutcome

log = logging.getLogger(__name__)

# A request never waits longer than this for its batch (the statement timeout is 30 s).
_WAIT_SECONDS = 60.0


class BatchStore(Protocol):
    def insert_many(self, commands: Sequence[Accept]) -> list[AcceptOutcome]: ...


def _locked() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(slots=True, eq=False)
class _Pending:
    command: Accept
    # Released once: when the result is in, or when this request is asked to lead.
    # A bare lock is the cheapest one-shot signal between threads (an Event is a
    # Condition, a lock and a deque).
    wake: threading.Lock = field(default_factory=_locked)
    done: bool = False
    lead: bool = False
    result: AcceptOutcome | None = None
    error: BaseException | None = None


class AcceptWriter:
    def __init__(self, store: BatchStore, writers: int = 2, max_batch: int = 256) -> None:
        self._store = store
        self._writers = writers  # batches being written at once, at most
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leaders = 0
        self._stopping = False
        self._idle = threading.Condition(self._lock)

    def start(self) -> AcceptWriter:
        """Nothing to start (requests lead themselves); kept so callers read the same."""
        return self

    def stop(self, timeout: float = _WAIT_SECONDS) -> bool:
        """Refuses new commands and waits up to `timeout` for everything queued to be
        committed; False when batches are still being written."""
        with self._lock:
            self._stopping = True
            return self._idle.wait_for(lambda: self._leaders == 0, timeout=timeout)

    def insert(self, command: Accept) -> AcceptOutcome:
        """Returns once the command's batch is committed (or raises its error)."""
        pending = _Pending(command)
        with self._lock:
            if self._stopping:
                raise TransientError("the gateway is shutting down; retry on another replica")
            pending.lead = self._leaders < self._writers
            if pending.lead:
                self._leaders += 1
            else:
                self._queue.append(pending)
        if not pending.lead:
            self._follow(pending)
        if pending.lead:
            self._lead(pending)
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

    def _follow(self, pending: _Pending) -> None:
        """Waits until the result is in or the lead is passed here."""
        if pending.wake.acquire(timeout=_WAIT_SECONDS):
            return
        with self._lock:
            if pending.done or pending.lead:
                return  # the result (or the lead) arrived just now after all
            if pending in self._queue:
                # Never written, and never will be: the caller may safely retry.
                self._queue.remove(pending)
        raise TransientError("the database did not commit the message in time; retry")

    def _lead(self, own: _Pending) -> None:
        """Writes `own` with whatever is queued, then passes the lead to the oldest
        follower still queued, or gives it up when nobody waits."""
        with self._lock:
            room = self._max_batch - 1
            batch = [own, *self._queue[:room]]
            del self._queue[:room]
        successor: _Pending | None = None
        try:
            self._write(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue.pop(0)
                    successor.lead = True
                else:
                    self._leaders -= 1
                    self._idle.notify_all()
            if successor is not None:
                successor.wake.release()

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
            elif isinstance(exc, psycopg2.errors.ForeignKeyViolation) and isinstance(
                command := batch[0].command, AcceptCommand
            ):
                name = command.template.name
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
    result: AcceptOutcome | None = None,
    error: BaseException | None = None,
) -> None:
    pending.result = result
    pending.error = error
    pending.done = True
    if not pending.lead:
        pending.wake.release()
