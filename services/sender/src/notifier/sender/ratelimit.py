"""Rate-limit arithmetic, pure: the per-recipient token bucket and the global slot schedule.

Time comes in as `now` (seconds on one monotonic clock); nothing here sleeps, reads a
clock or talks to PostgreSQL (`rate_slots` leases the slots this module lays out).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Container, Iterator
from dataclasses import dataclass

# Float sums of refills are not exact: 6 s at 1/6 token per second may give 0.99999...
_EPSILON = 1e-9


class TokenBucket:
    """`burst` tokens at most, refilled at `rate_per_second`; starts full.

    `try_acquire(now)` takes a token and returns 0, or returns the seconds until one
    will be there (taking nothing). A `now` earlier than one seen before counts as
    that earlier time: the bucket never refills backwards.
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate_per_second: float, burst: float) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._rate = rate_per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def try_acquire(self, now: float) -> float:
        wait = self.wait_time(now)
        if wait == 0.0:
            self._tokens -= 1.0
        return wait

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 if one is now), without taking it."""
        self._refill(now)
        if self._tokens >= 1.0 - _EPSILON:
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def is_full(self, now: float) -> bool:
        """True when the bucket holds `burst` tokens: forgetting it changes nothing."""
        self._refill(now)
        return self._tokens >= self._burst - _EPSILON

    def _refill(self, now: float) -> None:
        if self._last is None or now > self._last:
            if self._last is not None:
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now


class RecipientBuckets:
    """One TokenBucket per recipient, created on first use and dropped once full and idle."""

    def __init__(self, interval_seconds: float, burst: int) -> None:
        self._rate = 1.0 / interval_seconds if interval_seconds > 0 else math.inf
        self._burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def wait_time(self, recipient: str, now: float) -> float:
        bucket = self._buckets.get(recipient)
        return 0.0 if bucket is None or self._rate == math.inf else bucket.wait_time(now)

    def try_acquire(self, recipient: str, now: float) -> float:
        if self._rate == math.inf:
            return 0.0
        bucket = self._buckets.get(recipient)
        if bucket is None:
            bucket = self._buckets[recipient] = TokenBucket(self._rate, self._burst)
        return bucket.try_acquire(now)

    def prune(self, now: float, busy: Container[str]) -> int:
        """Forgets full buckets of recipients not in `busy`; returns how many."""
        idle = [r for r, b in self._buckets.items() if r not in busy and b.is_full(now)]
        for recipient in idle:
            del self._buckets[recipient]
        return len(idle)


def slot_spacing(mps: float, safety_factor: float) -> float:
    """Seconds between two slots: 1 / (mps x safety_factor)."""
    return 1.0 / (mps * safety_factor)


def late_tolerance(safety_factor: float) -> float:
    """How late a call may start after its slot: half the slack that the safety factor
    leaves per one-second window (1 / factor - 1), and at least 1 ms."""
    return max(0.001, (1.0 / safety_factor - 1.0) / 2.0)


def run_length(wanted: int, spacing: float, run_seconds: float) -> int:
    """How many slots to lease at once: what is wanted, at most `run_seconds` worth, >= 1."""
    return max(1, min(wanted, int(run_seconds / spacing + _EPSILON)))


@dataclass(frozen=True, slots=True)
class SlotRun:
    """`count` slots leased together: the first at `first_at`, then one every `spacing`."""

    first_at: float
    count: int
    spacing: float

    def times(self) -> Iterator[float]:
        return (self.first_at + i * self.spacing for i in range(self.count))


class ClockOffset:
    """Where the database's clock reads on ours, learnt from recent lease round trips.

    Each lease returns the database's clock reading; it was taken somewhere between our
    sending and receiving, so midpoint - reading is a sample of the offset, off by at most
    half its round trip. As in NTP's clock filter, the sample with the fastest recent round
    trip is trusted, so a slow answer (a stalled thread, a busy server) does not move the
    slots it brought. Only this replica's monotonic clock and the database's are involved:
    replica clocks never need to agree with anything.
    """

    def __init__(self, keep: int = 16, max_age: float = 30.0) -> None:
        self._max_age = max_age
        # (received_at, round trip, database reading - our midpoint)
        self._samples: deque[tuple[float, float, float]] = deque(maxlen=keep)

    def observe(self, sent_at: float, received_at: float, remote_reading: float) -> None:
        midpoint = (sent_at + received_at) / 2.0
        self._samples.append((received_at, received_at - sent_at, remote_reading - midpoint))
        while self._samples and received_at - self._samples[0][0] > self._max_age:
            self._samples.popleft()

    def samples(self, now: float) -> int:
        """How many samples are recent enough to be used at `now`."""
        return sum(1 for received_at, _, _ in self._samples if now - received_at <= self._max_age)

    @property
    def round_trip(self) -> float:
        """The fastest recent round trip (0 before the first lease)."""
        return min((trip for _, trip, _ in self._samples), default=0.0)

    @property
    def slowest_trip(self) -> float:
        """The slowest recent round trip (0 before the first lease)."""
        return max((trip for _, trip, _ in self._samples), default=0.0)

    def to_local(self, remote_time: float) -> float:
        """A database time on our clock; needs at least one observation."""
        _, _, offset = min(self._samples, key=lambda sample: sample[1])
        return remote_time - offset


class SlotBook:
    """Slots this replica leased and has not handed out yet, earliest first.

    A slot whose time passed more than `late_tolerance` ago is thrown away rather than
    used: a call that late would crowd the next slots (see `rate_slots`).
    """

    def __init__(self, late_tolerance: float) -> None:
        self._late_tolerance = late_tolerance
        self._slots: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, run: SlotRun) -> None:
        self._slots.extend(run.times())

    def take(self, now: float) -> tuple[float | None, int]:
        """(the earliest usable slot or None, how many stale slots were thrown away)."""
        stale = 0
        while self._slots:
            slot = self._slots.popleft()
            if now - slot <= self._late_tolerance:
                return slot, stale
            stale += 1
        return None, stale

    def is_late(self, slot: float, now: float) -> bool:
        return now - slot > self._late_tolerance
