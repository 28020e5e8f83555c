"""The record of every accepted call and the counts tests and benchmarks read back.

Thread-safe (one lock). Owns no policy: the app decides what is accepted or rejected.
Status callbacks are recorded in its `callbacks` log and reported with the same stats.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.twilio_emulator.callback_log import CallbackLog, CallbackStats
from notifier.twilio_emulator.catalog import TwilioError
from notifier.twilio_emulator.lifecycle import Step, Timeline


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One accepted create call, as it arrived, with the SID and status it was given."""

    sid: str
    account_sid: str
    arrived_at: float
    """Wall-clock arrival (epoch seconds): the instant its sender's rate window counted it."""
    to: str
    from_: str | None
    messaging_service_sid: str | None
    content_sid: str | None
    content_variables: Mapping[str, str] | None
    body: str | None
    status_callback: str | None
    mid: str | None
    status: str

    @property
    def sender(self) -> str:
        return self.from_ or self.messaging_service_sid or ""

    def to_json(self) -> dict[str, object]:
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "arrived_at": self.arrived_at,
            "to": self.to,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "content_sid": self.content_sid,
            "content_variables": (
                dict(self.content_variables) if self.content_variables is not None else None
            ),
            "body": self.body,
            "status_callback": self.status_callback,
            "mid": self.mid,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class SenderStats:
    accepted: int
    peak_per_second: int
    """Most calls accepted from this sender within any one-second window."""
    first_at: float
    last_at: float


@dataclass(frozen=True, slots=True)
class LedgerStats:
    accepted: int
    rejected: int
    rejected_by_code: Mapping[int, int]
    throttled: int
    """Calls answered 429 (the rate limit or an injected rule)."""
    duplicates: int
    """Accepted calls whose `mid` had already been accepted (extra sends, not distinct ids)."""
    duplicate_mids: Mapping[str, int]
    """mid -> times accepted, only for mids accepted more than once."""
    senders: Mapping[str, SenderStats]
    callbacks: CallbackStats = field(default_factory=CallbackStats)
    rejected_mids: Mapping[str, int] = field(default_factory=dict)
    """mid -> create calls refused (any code), for calls whose StatusCallback named one."""

    @property
    def peak_per_second(self) -> int:
        """The highest per-sender peak: what a per-number limit has to stay under."""
        return max((s.peak_per_second for s in self.senders.values()), default=0)

    def to_json(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_by_code": {str(code): n for code, n in self.rejected_by_code.items()},
            "throttled": self.throttled,
            "duplicates": self.duplicates,
            "duplicate_mids": dict(self.duplicate_mids),
            "rejected_mids": dict(self.rejected_mids),
            "peak_per_second": self.peak_per_second,
            "senders": {
                sender: {
                    "accepted": s.accepted,
                    "peak_per_second": s.peak_per_second,
                    "first_at": s.first_at,
                    "last_at": s.last_at,
                }
                for sender, s in self.senders.items()
            },
            "callbacks": self.callbacks.to_json(),
        }


class Ledger:
    """Accepted messages in arrival order, by SID, plus rejection and duplicate counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[RecordedMessage] = []
        self._by_sid: dict[str, RecordedMessage] = {}
        self._rejected: Counter[int] = Counter()
        self._throttled = 0
        self._mids: Counter[str] = Counter()
        self._rejected_mids: Counter[str] = Counter()
        self._timelines: dict[str, Timeline] = {}
        self._senders: dict[str, SenderStats] = {}
        self.callbacks = CallbackLog()

    def record_accepted(
        self, message: RecordedMessage, in_window: int, timeline: Timeline | None = None
    ) -> None:
        """Keep `message`; `in_window` is its sender's count in the window it closed;
        `timeline` is how its status moves on (None: it stays as created)."""
        with self._lock:
            self._messages.append(message)
            self._by_sid[message.sid] = message
            if timeline is not None:
                self._timelines[message.sid] = timeline
            if message.mid is not None:
                self._mids[message.mid] += 1
            sender = message.sender
            before = self._senders.get(sender)
            self._senders[sender] = SenderStats(
                accepted=(before.accepted if before else 0) + 1,
                peak_per_second=max(before.peak_per_second if before else 0, in_window),
                first_at=before.first_at if before else message.arrived_at,
                last_at=message.arrived_at,
            )

    def record_rejected(self, error: TwilioError, mid: str | None = None) -> None:
        with self._lock:
            self._rejected[error.code] += 1
            if mid is not None:
                self._rejected_mids[mid] += 1
            if error.status == 429:
                self._throttled += 1

    def messages(self) -> list[RecordedMessage]:
        with self._lock:
            return list(self._messages)

    def get(self, sid: str) -> RecordedMessage | None:
        with self._lock:
            return self._by_sid.get(sid)

    def status_of(self, sid: str, now: float) -> Step | None:
        """The message's status at `now` (the app's monotonic clock), None if unknown."""
        with self._lock:
            message = self._by_sid.get(sid)
            timeline = self._timelines.get(sid)
        if message is None:
            return None
        return (timeline or Timeline(message.status)).status_at(now)

    def stats(self) -> LedgerStats:
        with self._lock:
            duplicate_mids = {mid: n for mid, n in self._mids.items() if n > 1}
            return LedgerStats(
                accepted=len(self._messages),
                rejected=sum(self._rejected.values()),
                rejected_by_code=dict(self._rejected),
                throttled=self._throttled,
                duplicates=sum(n - 1 for n in duplicate_mids.values()),
                duplicate_mids=duplicate_mids,
                rejected_mids=dict(self._rejected_mids),
                senders=dict(self._senders),
                callbacks=self.callbacks.stats(),
            )

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._by_sid.clear()
            self._rejected.clear()
            self._throttled = 0
            self._mids.clear()
            self._rejected_mids.clear()
            self._timelines.clear()
            self._senders.clear()
        self.callbacks.reset()
