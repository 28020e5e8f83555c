"""Hands each ready Twilio call one global slot, leasing runs of slots as workers need them.

Thread-safe. How slots are leased (PostgreSQL) is `rate_slots`; the arithmetic is in
`ratelimit`. Runs are leased only for workers actually waiting, and a replica holds at
most two runs it has not used yet, so replicas interleave and little is wasted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from notifier.common.errors import TransientError
from notifier.sender import metrics
from notifier.sender.classify import backoff_delay
from notifier.sender.ratelimit import ClockOffset, SlotBook, SlotRun, run_length

log = logging.getLogger(__name__)

# Waiting workers re-check their cancellation at least this often.
_RECHECK_SECONDS = 0.25
# Bounds of the time between a lease and its first slot, for the answer to travel back.
_MIN_LEAD_SECONDS = 0.01
_MAX_LEAD_SECONDS = 0.5
# Clock readings taken before a lease when fewer than this many recent samples place it
# (at start, after an idle spell), as NTP's iburst does: one sample, from the first
# statement of a cold connection, can be several milliseconds off, enough to put a new
# replica's slots among another's.
_FIRST_SAMPLES = 4


@dataclass(frozen=True, slots=True)
class Lease:
    """A leased run. `read_at` (when the database read its clock) and `first_at` (its
    first slot) are database seconds; `sent_at`/`received_at` bracket the statement alone
    on our clock (not the connection set-up), so they bound when that reading happened."""

    read_at: float
    first_at: float
    sent_at: float
    received_at: float


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The database's clock (`read_at`, database seconds), read by a statement that went
    out at `sent_at` and came back at `received_at` on our clock."""

    read_at: float
    sent_at: float
    received_at: float


class SlotLeaser(Protocol):
    def lease(self, count: int, lead: float) -> Lease:
        """Claims `count` consecutive slots, the first no sooner than `lead` seconds after
        the database reads its clock."""
        ...

    def read_clock(self) -> ClockReading:
        """One reading of the database's clock, nothing else (a single round trip)."""
        ...


class SlotPacer:
    """Slots leased and not yet handed out, and the leasing of new runs (one at a time)."""

    def __init__(
        self,
        leaser: SlotLeaser,
        spacing: float,
        run_seconds: float,
        late_tolerance: float,
        clock: Callable[[], float] = time.monotonic,
        retry_base: float = 0.2,
        retry_max: float = 5.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._leaser = leaser
        self._spacing = spacing
        self._run = run_length(1 << 30, spacing, run_seconds)
        self._clock = clock
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._rng = rng
        self._cond = threading.Condition()
        self._book = SlotBook(late_tolerance)
        self._offset = ClockOffset()
        self._waiting = 0
        # Slots leased and neither used nor given up yet (handed out or still in the book).
        self._reserved = 0
        self._leasing = False
        self._failures = 0
        self._retry_at = 0.0

    @property
    def spacing(self) -> float:
        return self._spacing

    def is_late(self, slot: float, now: float) -> bool:
        return self._book.is_late(slot, now)

    def acquire(self, cancelled: Callable[[], bool]) -> float | None:
        """Blocks until a slot is the caller's and returns its time (on `clock`).

        Returns None as soon as `cancelled()` is true; `wake()` makes waiters check.
        Every slot returned must be given back through `release()`.
        """
        with self._cond:
            self._waiting += 1
        try:
            while not cancelled():
                with self._cond:
                    slot = self._take()
                    if slot is not None:
                        return slot
                    count = self._lease_size()
                    if count == 0:
                        self._cond.wait(self._wait_timeout())
                        continue
                    self._leasing = True
                self._lease(count)
            return None
        finally:
            with self._cond:
                self._waiting -= 1

    def release(self, outcome: str) -> None:
        """Gives back a slot from `acquire`: "used", "late" or "abandoned"."""
        metrics.RATE_SLOTS.labels(outcome).inc()
        with self._cond:
            self._reserved -= 1
            self._cond.notify()  # a waiter may lease now that fewer slots are held

    def wake(self) -> None:
        """Makes every waiting worker re-check whether it was cancelled."""
        with self._cond:
            self._cond.notify_all()

    def _take(self) -> float | None:
        slot, stale = self._book.take(self._clock())
        if stale:
            self._reserved -= stale
            metrics.RATE_SLOTS.labels("late").inc(stale)
        return slot

    def _lease_size(self) -> int:
        if self._leasing or self._reserved >= 2 * self._run:
            return 0
        if self._clock() < self._retry_at:
            return 0
        return min(self._waiting, self._run)

    def _wait_timeout(self) -> float:
        until_retry = self._retry_at - self._clock()
        return min(_RECHECK_SECONDS, until_retry) if until_retry > 0 else _RECHECK_SECONDS

    def _lease(self, count: int) -> None:
        # The first slot lies this far ahead, so the answer is back before it even when
        # answers are slow; it delays only a lease on an idle timeline.
        try:
            with self._cond:
                samples = self._offset.samples(self._clock())
            for _ in range(_FIRST_SAMPLES - samples):
                reading = self._leaser.read_clock()
                with self._cond:
                    self._offset.observe(reading.sent_at, reading.received_at, reading.read_at)
            lead = min(_MAX_LEAD_SECONDS, max(_MIN_LEAD_SECONDS, 1.5 * self._offset.slowest_trip))
            lease = self._leaser.lease(count, lead)
        except Exception as exc:
            self._lease_failed(exc)
            return
        with self._cond:
            self._offset.observe(lease.sent_at, lease.received_at, lease.read_at)
            first = self._offset.to_local(lease.first_at)
            self._book.add(SlotRun(first, count, self._spacing))
            self._reserved += count
            self._leasing = False
            if self._failures:
                log.info("slot leases work again", extra={"failures": self._failures})
            self._failures = 0
            # One waiter per new slot, plus one to lease the next run if more are waiting
            # (waking them all, 60 threads per slot, costs the GIL time that pacing needs).
            self._cond.notify(count + 1)

    def _lease_failed(self, exc: Exception) -> None:
        metrics.LEASE_ERRORS.inc()
        with self._cond:
            self._failures += 1
            pause = backoff_delay(self._failures, self._retry_base, self._retry_max, self._rng)
            self._retry_at = self._clock() + max(pause, self._retry_base / 2)
            self._leasing = False
            first = self._failures == 1
            self._cond.notify_all()
        if isinstance(exc, TransientError):
            if first:
                log.warning("cannot lease send slots; sending paused", extra={"error": str(exc)})
        else:
            log.exception("unexpected error leasing send slots; sending paused")
