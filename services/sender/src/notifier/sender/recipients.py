"""Which queued send may start next: one FIFO per recipient, the pair limit and retry times.

Pure bookkeeping (time comes in as `now`); the scheduler holds the lock and the threads.
A recipient's messages go out in order and one at a time; other recipients never wait
for it, whatever its pair limit or retries.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from notifier.common.domain.messages import SendCommand
from notifier.sender.ratelimit import RecipientBuckets

PartitionKey = tuple[str, int]


@dataclass(eq=False, slots=True)
class Job:
    """One send command in the scheduler, from poll to result."""

    command: SendCommand
    partition: PartitionKey
    offset: int
    # Twilio calls made so far; the pair limit is charged on the first only.
    attempts: int = 0
    # Not before this time (a retry's backoff), on the scheduler's clock.
    retry_at: float = 0.0
    # Failed status checks in a row (PostgreSQL unavailable), for their backoff.
    check_failures: int = 0
    # The status and opt-out check passed for the next call (cleared before a retry).
    checked: bool = False
    # Seconds the pair limit held this job back, for the wait metric.
    pair_wait: float = 0.0
    # Set by revoke/stop: a job not yet calling Twilio gives up; one calling finishes
    # but is not retried (the partition's new owner sends it again).
    cancelled: bool = False
    revoked: bool = False
    calling: bool = False
    # The outcome went to SendService.report: whatever happens next, never send again.
    reported: bool = False
    # Its partition was given up (revoke done, or lost): its offset means nothing to the
    # next owner (a recreated topic reuses offsets), so finishing it stores nothing.
    disowned: bool = False
    wake: threading.Event = field(default_factory=threading.Event)

    @property
    def recipient(self) -> str:
        return self.command.to


class RecipientQueues:
    """Queued jobs by recipient; `pop_ready(now)` returns one whose turn has come."""

    def __init__(self, buckets: RecipientBuckets) -> None:
        self._buckets = buckets
        self._queues: dict[str, deque[Job]] = {}
        self._busy: set[str] = set()
        # When each recipient's head job should be looked at next, and a heap of those.
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, job: Job, now: float) -> None:
        queue = self._queues.setdefault(job.recipient, deque())
        queue.append(job)
        self._size += 1
        if len(queue) == 1 and job.recipient not in self._busy:
            self._schedule(job.recipient, max(now, job.retry_at))

    def pop_ready(self, now: float) -> Job | None:
        """The next job allowed to start now (its recipient becomes busy), or None."""
        while self._heap and self._heap[0][0] <= now:
            at, _, recipient = heapq.heappop(self._heap)
            if self._due.get(recipient) != at:
                continue  # superseded by an earlier entry, or already handled
            del self._due[recipient]
            queue = self._queues.get(recipient)
            if not queue or recipient in self._busy:
                continue
            job = queue[0]
            if job.retry_at > now:
                self._schedule(recipient, job.retry_at)
                continue
            if job.attempts == 0:
                wait = self._buckets.wait_time(recipient, now)
                if wait > 0:
                    job.pair_wait += wait
                    self._schedule(recipient, now + wait)
                    continue
            queue.popleft()
            self._size -= 1
            if not queue:
                del self._queues[recipient]
            self._busy.add(recipient)
            return job
        return None

    def next_due(self) -> float | None:
        """When `pop_ready` may next return a job (None: nothing is waiting)."""
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def charge(self, recipient: str, now: float) -> None:
        """Takes the pair-limit token of a first attempt, at the moment its call starts."""
        self._buckets.try_acquire(recipient, now)

    def finish(self, job: Job, now: float) -> None:
        """The recipient's current job is over; its next one may be looked at."""
        self._busy.discard(job.recipient)
        if self._queues.get(job.recipient):
            self._schedule(job.recipient, now)

    def retry(self, job: Job, at: float) -> None:
        """Puts a job back at the head of its recipient's queue, not before `at`."""
        job.retry_at = at
        self._queues.setdefault(job.recipient, deque()).appendleft(job)
        self._size += 1
        self._busy.discard(job.recipient)
        self._schedule(job.recipient, at)

    def remove(self, predicate: Callable[[Job], bool]) -> list[Job]:
        """Takes every queued job matching `predicate` out; returns them."""
        removed: list[Job] = []
        for recipient in list(self._queues):
            queue = self._queues[recipient]
            kept = deque(job for job in queue if not predicate(job))
            removed.extend(job for job in queue if predicate(job))
            if kept:
                self._queues[recipient] = kept
            else:
                del self._queues[recipient]
                self._due.pop(recipient, None)
        self._size -= len(removed)
        return removed

    def prune(self, now: float) -> int:
        """Forgets pair-limit buckets that are full and belong to no queued or busy recipient."""
        return self._buckets.prune(now, _Union(self._busy, self._queues))

    def _schedule(self, recipient: str, at: float) -> None:
        current = self._due.get(recipient)
        if current is not None and current <= at:
            return
        self._due[recipient] = at
        heapq.heappush(self._heap, (at, next(self._sequence), recipient))


class _Union:
    """`in` over two containers without building a new set."""

    def __init__(self, first: set[str], second: dict[str, deque[Job]]) -> None:
        self._first = first
        self._second = second

    def __contains__(self, item: object) -> bool:
        return item in self._first or item in self._second
