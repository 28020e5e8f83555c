"""The record of status callbacks: each one's outcome, and counts by status for the stats.

Thread-safe (one lock). A reset starts a new generation: outcomes reported for callbacks
scheduled before it are dropped, so a test never sees its predecessor's callbacks.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

MAX_RECORDS: Final = 10_000
"""Records kept for `/_emulator/callbacks` (the oldest go first); counts stay exact."""


class Outcome(StrEnum):
    OK = "ok"  # answered 2xx
    FAILED = "failed"  # no 2xx after the last attempt (or a 4xx, which is not retried)
    SKIPPED = "skipped"  # a reserved host (example.com, .test, ...): never called


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """One status callback's final outcome."""

    sid: str
    mid: str | None
    status: str
    url: str
    outcome: Outcome
    http_status: int | None
    """What the receiver answered last; None if it never answered."""
    attempts: int
    at: float
    """Wall-clock time of the last attempt (epoch seconds)."""
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "sid": self.sid,
            "mid": self.mid,
            "status": self.status,
            "url": self.url,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "at": self.at,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class CallbackStats:
    scheduled: int = 0
    sent: Mapping[str, int] = field(default_factory=dict)
    """Callbacks answered 2xx, by MessageStatus (a duplicate counts twice)."""
    failed: int = 0
    failed_by_status: Mapping[str, int] = field(default_factory=dict)
    retried: int = 0
    """Extra attempts made after a refused connection, a timeout, a 5xx or a 429."""
    skipped: int = 0

    @property
    def pending(self) -> int:
        """Scheduled callbacks without an outcome yet."""
        return self.scheduled - sum(self.sent.values()) - self.failed - self.skipped

    def to_json(self) -> dict[str, object]:
        return {
            "scheduled": self.scheduled,
            "sent": dict(self.sent),
            "failed": self.failed,
            "failed_by_status": dict(self.failed_by_status),
            "retried": self.retried,
            "skipped": self.skipped,
            "pending": self.pending,
        }


class CallbackLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._records: deque[CallbackRecord] = deque(maxlen=MAX_RECORDS)
        self._scheduled = 0
        self._sent: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._retried = 0
        self._skipped = 0

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def record_scheduled(self, generation: int, count: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._scheduled += count

    def record_retry(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._retried += 1

    def record(self, generation: int, record: CallbackRecord) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._records.append(record)
            if record.outcome is Outcome.OK:
                self._sent[record.status] += 1
            elif record.outcome is Outcome.FAILED:
                self._failed[record.status] += 1
            else:
                self._skipped += 1

    def records(self) -> list[CallbackRecord]:
        with self._lock:
            return list(self._records)

    def stats(self) -> CallbackStats:
        with self._lock:
            return CallbackStats(
                scheduled=self._scheduled,
                sent=dict(self._sent),
                failed=sum(self._failed.values()),
                failed_by_status=dict(self._failed),
                retried=self._retried,
                skipped=self._skipped,
            )

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._records.clear()
            self._scheduled = self._retried = self._skipped = 0
            self._sent.clear()
            self._failed.clear()
