"""When each send happens: pair limit and FIFO per recipient, a global slot, bounded retries.

A dispatcher thread hands ready jobs to a pool of workers; a worker checks the status,
waits for its slot, calls Twilio once and either reports the outcome or puts the job
back for a retry. What a step does is `SendService`'s; Kafka is the consumer's.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor

from notifier.common.domain.messages import SendCommand
from notifier.common.errors import PermanentError, TransientError
from notifier.sender import metrics
from notifier.sender.classify import RetryPolicy
from notifier.sender.pacer import SlotPacer
from notifier.sender.recipients import Job, PartitionKey, RecipientQueues
from notifier.sender.service import (
    Accepted,
    Failed,
    NotSent,
    Outcome,
    SendService,
    Sent,
    TransientApiError,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]
OnDone = Callable[[PartitionKey, int], None]


class Scheduler:
    """Runs submitted commands on `concurrency` workers; `on_done` once a result is acked."""

    def __init__(
        self,
        service: SendService,
        pacer: SlotPacer,
        queues: RecipientQueues,
        on_done: OnDone,
        *,
        concurrency: int,
        retry: RetryPolicy,
        clock: Clock = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._service = service
        self._pacer = pacer
        self._queues = queues
        self._on_done = on_done
        self._retry = retry
        self._clock = clock
        self._rng = rng
        self._cond = threading.Condition()
        self._free = concurrency
        self._active: set[Job] = set()
        self._stopping = False
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="sender-worker")
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="sender-dispatch", daemon=True
        )

    def start(self) -> Scheduler:
        self._dispatcher.start()
        return self

    def submit(self, command: SendCommand, partition: PartitionKey, offset: int) -> None:
        with self._cond:
            self._queues.add(Job(command, partition, offset), self._clock())
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._active)

    def revoke(self, partitions: Collection[PartitionKey], timeout: float) -> int:
        """Drops the partitions' jobs not yet calling Twilio and waits (bounded) for the rest.

        Returns how many calls were still running when `timeout` ran out.
        """
        wanted = set(partitions)
        return self._drop(lambda job: job.partition in wanted, timeout)

    def disown(self, partitions: Collection[PartitionKey]) -> None:
        """Jobs of these partitions still running report their outcome but no offset: the
        partitions are gone, and their offsets may name other records when they return."""
        wanted = set(partitions)
        with self._cond:
            for job in self._active:
                if job.partition in wanted:
                    job.disowned = True

    def stop(self, grace: float) -> int:
        """Starts nothing more; waits up to `grace` for calls in progress. Returns those left."""
        with self._cond:
            self._stopping = True
        left = self._drop(lambda job: True, grace)
        self._dispatcher.join(timeout=5)
        self._executor.shutdown(wait=left == 0, cancel_futures=True)
        return left

    def _drop(self, matches: Callable[[Job], bool], timeout: float) -> int:
        """Forgets matching jobs not yet calling Twilio; waits for those calling."""
        deadline = self._clock() + timeout
        with self._cond:
            self._queues.remove(matches)
            for job in self._active:
                if matches(job):
                    job.revoked = True
                    if not job.calling:
                        job.cancelled = True
                        job.wake.set()
            self._pacer.wake()
            self._cond.notify_all()
            while True:
                left = sum(1 for job in self._active if matches(job))
                remaining = deadline - self._clock()
                if left == 0 or remaining <= 0:
                    return left
                self._cond.wait(remaining)

    def _dispatch(self) -> None:
        next_prune = 0.0
        with self._cond:
            while not self._stopping:
                now = self._clock()
                job = self._queues.pop_ready(now) if self._free > 0 else None
                if job is None:
                    if now >= next_prune:
                        self._queues.prune(now)
                        next_prune = now + 1.0
                    due = self._queues.next_due()
                    timeout = 1.0 if due is None or self._free <= 0 else due - now
                    self._cond.wait(min(1.0, max(0.0, timeout)))
                    continue
                if job.pair_wait > 0 and job.attempts == 0:
                    metrics.RATE_LIMIT_WAIT.labels("pair").observe(job.pair_wait)
                    job.pair_wait = 0.0
                self._free -= 1
                self._active.add(job)
                metrics.IN_FLIGHT.inc()
                self._executor.submit(self._work, job)

    def _work(self, job: Job) -> None:
        try:
            self._run(job)
        except Exception:
            # A bug, not a Twilio or database error: log it once, keep the process up, and
            # count it as an attempt so a job that always hits it ends FAILED, not looping.
            log.exception("unexpected error sending", extra={"message_id": job.command.message_id})
            if job.reported:
                with self._cond:
                    self._queues.finish(job, self._clock())
            else:
                if not job.calling:
                    job.attempts += 1
                self._failed_attempt(job, TransientApiError("internal error", reason="unexpected"))
        finally:
            with self._cond:
                self._free += 1
                self._active.discard(job)
                metrics.IN_FLIGHT.dec()
                self._cond.notify_all()

    def _run(self, job: Job) -> None:
        if not job.checked:
            try:
                verdict = self._service.check(job.command)
            except TransientError as exc:
                self._check_failed(job, exc)
                return
            if verdict is not None:
                self._finish(job, verdict)
                return
            job.checked = True
        try:
            accepted = self._call_in_slot(job)
        except (TransientError, PermanentError) as exc:
            self._failed_attempt(job, exc)
            return
        if accepted is None:
            with self._cond:
                self._queues.finish(job, self._clock())
            return
        self._finish(job, Sent(accepted))

    def _call_in_slot(self, job: Job) -> Accepted | None:
        """Calls Twilio in a global slot of its own; None if the job was cancelled first.

        Whether the call is on time for its slot is decided by `go`, which the Twilio client
        asks right before it writes the request: a call that would reach the wire too late
        would crowd the next slots, so it gives the slot up (`late`) and waits for another
        with its request built, then is asked again.
        """
        ready_at = self._clock()
        slot = self._next_slot(job)
        if slot is None:
            return None
        outcome = ""

        def go() -> bool:
            nonlocal slot, outcome
            while slot is not None:
                with self._cond:
                    now = self._clock()
                    if job.cancelled:
                        outcome = "abandoned"
                    elif self._pacer.is_late(slot, now):
                        outcome = "late"
                    else:
                        outcome = "used"
                        job.calling = True
                        if job.attempts == 0:
                            self._queues.charge(job.recipient, now)
                        job.attempts += 1
                self._pacer.release(outcome)
                if outcome == "used":
                    metrics.RATE_LIMIT_WAIT.labels("global").observe(now - ready_at)
                    return True
                if outcome == "abandoned":
                    return False
                slot = self._next_slot(job)
            outcome = "abandoned"  # cancelled while waiting for another slot: none is held
            return False

        try:
            return self._service.attempt(job.command, go)
        except NotSent:
            return None
        finally:
            if not outcome:
                # The call ended before asking go() (its request could not even be
                # built): the slot goes back unused, and the try counts as an attempt.
                self._pacer.release("abandoned")
                job.attempts += 1

    def _next_slot(self, job: Job) -> float | None:
        """Waits for a global slot and then for its time; None if the job was cancelled."""
        slot = self._pacer.acquire(lambda: job.cancelled)
        if slot is None:
            return None
        while (delay := slot - self._clock()) > 0 and not job.wake.wait(delay):
            pass
        return slot

    def _failed_attempt(self, job: Job, exc: Exception) -> None:
        job.calling = False
        code = getattr(exc, "code", None)
        message = getattr(exc, "message", None) or str(exc)
        if not isinstance(exc, TransientError):
            self._finish(job, Failed(code, message))
            return
        if job.attempts >= self._retry.max_attempts:
            self._finish(job, Failed(code, f"{message} (gave up after {job.attempts} attempts)"))
            return
        reason = getattr(exc, "reason", "transient")
        metrics.RETRIES.labels(reason).inc()
        # Check again before the next call: an opt-out (or a callback showing Twilio took
        # the message after all) may land during the backoff.
        job.checked = False
        delay = self._retry.delay(job.attempts, self._rng)
        log.info(
            "twilio call will be retried",
            extra={"message_id": job.command.message_id, "attempts": job.attempts,
                   "reason": reason, "error_code": code, "delay_seconds": round(delay, 3)},
        )  # fmt: skip
        self._requeue(job, delay)

    def _check_failed(self, job: Job, exc: TransientError) -> None:
        job.check_failures += 1
        metrics.RETRIES.labels("database").inc()
        if job.check_failures == 1:
            log.warning(
                "cannot check message status; will retry",
                extra={"message_id": job.command.message_id, "error": str(exc)},
            )
        delay = self._retry.delay(job.check_failures, self._rng)
        self._requeue(job, max(delay, 0.05))

    def _requeue(self, job: Job, delay: float) -> None:
        with self._cond:
            if job.revoked:
                # Its partition is gone: the new owner (or the next start) sends it again.
                self._queues.finish(job, self._clock())
            else:
                self._queues.retry(job, self._clock() + delay)
            self._cond.notify_all()

    def _finish(self, job: Job, outcome: Outcome) -> None:
        job.calling = False
        job.reported = True

        def acked() -> None:
            if not job.disowned:
                self._on_done(job.partition, job.offset)

        self._service.report(job.command, outcome, job.attempts, acked)
        with self._cond:
            self._queues.finish(job, self._clock())
            self._cond.notify_all()
