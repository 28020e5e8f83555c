"""CallbackDispatcher: posts each accepted message's planned status callbacks when they fall due.

One scheduler thread keeps a heap of due times and waits on a Condition until the next one
(never a sleep loop); a small pool of sender threads posts them, signed, over kept-alive
sockets. One message's callbacks all go through one sender, so they leave in the planned
order; a refused connection, timeout, 5xx or 429 is retried later through the heap with a
doubling backoff. Outcomes go to the CallbackLog; failures are logged, never raised.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from notifier.twilio_emulator.callback_log import CallbackLog, CallbackRecord, Outcome
from notifier.twilio_emulator.callback_plan import CallbackSettings, PlannedCallback
from notifier.twilio_emulator.ledger import RecordedMessage
from notifier.twilio_emulator.webhook_client import (
    PostFailed,
    PostResult,
    SignedPoster,
    is_reserved_host,
)
from notifier.twilio_emulator.webhook_forms import status_callback_form

logger = logging.getLogger(__name__)


class Poster(Protocol):
    def post(
        self,
        url: str,
        params: Mapping[str, str],
        auth_token: str,
        *,
        timeout: float | None = None,
        idempotency_token: str | None = None,
    ) -> PostResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallbackJob:
    """One status callback to post (and how hard to try)."""

    message_sid: str
    mid: str | None
    status: str
    url: str
    params: Mapping[str, str]
    auth_token: str = field(repr=False)
    generation: int
    idempotency_token: str
    """The same for every attempt, as Twilio's I-Twilio-Idempotency-Token."""
    max_attempts: int
    backoff: float
    timeout: float
    attempt: int = 1


class CallbackDispatcher:
    def __init__(
        self,
        log: CallbackLog,
        *,
        workers: int = 4,
        poster_factory: Callable[[], Poster] = SignedPoster,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._log = log
        self._workers = workers
        self._poster_factory = poster_factory
        self._clock = clock
        self._wall_clock = wall_clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, CallbackJob]] = []
        self._order = itertools.count()  # ties on the due time keep the planned order
        self._stopping = False
        self._queues: list[queue.SimpleQueue[CallbackJob | None]] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("dispatcher already started")
        with self._cond:
            self._stopping = False
        self._queues = [queue.SimpleQueue() for _ in range(self._workers)]
        self._threads = [threading.Thread(target=self._schedule_loop, name="callback-scheduler")]
        self._threads += [
            threading.Thread(target=self._send_loop, args=(jobs,), name=f"callback-sender-{i}")
            for i, jobs in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Drop what is not due yet; give posts in flight up to `timeout` seconds to end."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for jobs in self._queues:
            jobs.put(None)
        deadline = self._clock() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        self._threads = []

    def schedule(
        self,
        message: RecordedMessage,
        plan: Sequence[PlannedCallback],
        settings: CallbackSettings,
        auth_token: str,
        after: float = 0.0,
    ) -> None:
        """Post `plan` to the message's StatusCallback, each `after` + its delay from now."""
        url = message.status_callback
        if not url or not plan:
            return
        generation = self._log.generation
        start = self._clock() + after
        self._log.record_scheduled(generation, len(plan))
        with self._cond:
            for planned in plan:
                job = CallbackJob(
                    message_sid=message.sid,
                    mid=message.mid,
                    status=planned.status,
                    url=url,
                    params=status_callback_form(message, planned.status, planned.error),
                    auth_token=auth_token,
                    generation=generation,
                    idempotency_token=str(uuid.uuid4()),
                    max_attempts=settings.attempts,
                    backoff=settings.retry_backoff,
                    timeout=settings.timeout,
                )
                heapq.heappush(self._heap, (start + planned.delay, next(self._order), job))
            self._cond.notify()

    def cancel_all(self) -> None:
        """Forget every callback not posted yet (the log's reset drops those in flight)."""
        with self._cond:
            self._heap.clear()

    def _schedule_loop(self) -> None:
        with self._cond:
            while not self._stopping:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                job = heapq.heappop(self._heap)[2]
                shard = zlib.crc32(job.message_sid.encode()) % len(self._queues)
                self._queues[shard].put(job)

    def _send_loop(self, jobs: queue.SimpleQueue[CallbackJob | None]) -> None:
        poster = self._poster_factory()
        try:
            while (job := jobs.get()) is not None:
                try:
                    self._deliver(job, poster)
                except Exception:
                    logger.exception("unexpected error posting a status callback")
        finally:
            poster.close()

    def _deliver(self, job: CallbackJob, poster: Poster) -> None:
        if job.generation != self._log.generation:
            return  # scheduled before a reset
        if is_reserved_host(job.url):
            self._finish(job, Outcome.SKIPPED, None, "reserved host, never called")
            return
        status: int | None
        error: str | None
        try:
            result = poster.post(
                job.url,
                job.params,
                job.auth_token,
                timeout=job.timeout,
                idempotency_token=job.idempotency_token,
            )
        except PostFailed as exc:
            status, error = None, str(exc)
        else:
            status, error = result.status, (None if result.ok else f"answered {result.status}")
        if status is not None and 200 <= status < 300:
            self._finish(job, Outcome.OK, status, None)
        elif (status is None or status >= 500 or status == 429) and job.attempt < job.max_attempts:
            self._log.record_retry(job.generation)
            due = self._clock() + job.backoff * 2 ** (job.attempt - 1)
            retry = dataclasses.replace(job, attempt=job.attempt + 1)
            with self._cond:
                heapq.heappush(self._heap, (due, next(self._order), retry))
                self._cond.notify()
        else:
            self._finish(job, Outcome.FAILED, status, error)

    def _finish(
        self, job: CallbackJob, outcome: Outcome, http_status: int | None, error: str | None
    ) -> None:
        sid, at = job.message_sid, self._wall_clock()
        record = CallbackRecord(
            sid, job.mid, job.status, job.url, outcome, http_status, job.attempt, at, error
        )
        self._log.record(job.generation, record)
        level = logging.INFO if outcome is Outcome.FAILED else logging.DEBUG
        context = {
            "twilio_sid": job.message_sid,
            "message_id": job.mid,
            "callback": job.status,
            "http_status": http_status,
            "attempts": job.attempt,
            "reason": error,
        }
        logger.log(level, "status callback %s", outcome.value, extra=context)
