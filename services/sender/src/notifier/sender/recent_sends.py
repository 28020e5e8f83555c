"""What this replica sent lately: message id -> the SID Twilio gave it, and when. Pure.

A command that comes back for such a message (republished after the broker lost its data,
redelivered after a rebalance) must not reach Twilio again: the sender reports the SID it
already has. Bounded by count (the oldest go first) and by age; time comes in as `now`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from notifier.common.domain.ids import MessageId, TwilioSid


@dataclass(frozen=True, slots=True)
class RecentSend:
    sid: TwilioSid
    sent_at: float


class RecentSends:
    """At most `capacity` sends younger than `max_age_seconds`; capacity 0 remembers none.

    Safe to share between the sender's worker threads (one lock, O(1) per call).
    """

    def __init__(self, capacity: int = 200_000, max_age_seconds: float = 3600.0) -> None:
        if capacity < 0 or max_age_seconds <= 0:
            raise ValueError("capacity must be >= 0 and max_age_seconds > 0")
        self._capacity = capacity
        self._max_age = max_age_seconds
        # Insertion order is send order, so the oldest entry is always first.
        self._sends: OrderedDict[MessageId, RecentSend] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sends)

    def remember(self, message_id: MessageId, sid: TwilioSid, now: float) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._sends.pop(message_id, None)
            self._sends[message_id] = RecentSend(sid, now)
            self._expire(now)
            while len(self._sends) > self._capacity:
                self._sends.popitem(last=False)

    def get(self, message_id: MessageId, now: float) -> RecentSend | None:
        """The send of `message_id` if it is remembered and younger than the age limit."""
        with self._lock:
            self._expire(now)
            return self._sends.get(message_id)

    def _expire(self, now: float) -> None:
        horizon = now - self._max_age
        while self._sends:
            oldest = next(iter(self._sends.values()))
            if oldest.sent_at > horizon:
                return
            self._sends.popitem(last=False)
