"""Which stale messages the status reconciler asks Twilio about, and when it asks again. Pure.

A message is a candidate once its status has stood still for a while (the store selects
those). `Scan` walks the candidates page by page across passes, so messages checked lately
never crowd out the rest; `CheckBackoff` spaces out the checks of a message Twilio keeps
confirming unchanged (DELIVERED without read receipts), and `further_status` says whether
Twilio's answer moves ours forward. Time comes in as `now`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.status import Advance, MessageStatus, apply_status, from_twilio

Cursor = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A message whose status has not moved for a while, as the database has it."""

    message_id: MessageId
    sid: TwilioSid
    status: MessageStatus
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TwilioState:
    """What Twilio says about a message now (its own status word, error if any)."""

    status: str
    error_code: int | None = None
    error_message: str | None = None


def further_status(current: MessageStatus, state: TwilioState) -> MessageStatus | None:
    """Twilio's status when it moves `current` forward, else None (same, behind, unknown)."""
    incoming = from_twilio(state.status)
    if incoming is None:
        return None
    return incoming if isinstance(apply_status(current, incoming), Advance) else None


@dataclass(slots=True)
class _Check:
    status: MessageStatus
    due_at: float
    unchanged: int


class CheckBackoff:
    """When each message checked and found unchanged may be checked again.

    The k-th unchanged answer in a row waits `first_pause` x `factor`^(k-1), at most
    `max_pause`. A message whose stored status changed since is due at once. At most
    `capacity` messages are remembered (the least recently checked are forgotten first,
    which only makes them due sooner).
    """

    def __init__(
        self,
        first_pause: float,
        factor: float = 4.0,
        max_pause: float = 86_400.0,
        capacity: int = 100_000,
    ) -> None:
        self._first = first_pause
        self._factor = factor
        self._max = max_pause
        self._capacity = capacity
        self._checks: OrderedDict[MessageId, _Check] = OrderedDict()

    def __len__(self) -> int:
        return len(self._checks)

    def is_due(self, candidate: Candidate, now: float) -> bool:
        check = self._checks.get(candidate.message_id)
        return check is None or check.status is not candidate.status or now >= check.due_at

    def unchanged(self, candidate: Candidate, now: float) -> None:
        """Twilio confirmed the stored status (or knows nothing better): back off."""
        check = self._checks.pop(candidate.message_id, None)
        count = check.unchanged + 1 if check and check.status is candidate.status else 1
        pause = min(self._first * self._factor ** (count - 1), self._max)
        self._checks[candidate.message_id] = _Check(candidate.status, now + pause, count)
        while len(self._checks) > self._capacity:
            self._checks.popitem(last=False)

    def moved(self, candidate: Candidate) -> None:
        """Twilio's status moved it on: forget it (its stored status is about to change)."""
        self._checks.pop(candidate.message_id, None)


class Scan:
    """A walk over the candidates in (updated_at, id) order that resumes where it stopped.

    `cursor` is the last candidate looked at (None: start from the beginning). A page
    shorter than `page_size` is the end of the window, and the next walk starts over.
    """

    def __init__(self, backoff: CheckBackoff, page_size: int) -> None:
        self.backoff = backoff
        self.page_size = page_size
        self.cursor: Cursor | None = None

    def take(
        self, page: Sequence[Candidate], now: float, wanted: int
    ) -> tuple[list[Candidate], bool]:
        """Up to `wanted` due candidates of `page`, in order; True when the window ended."""
        taken: list[Candidate] = []
        for candidate in page:
            if len(taken) >= wanted:
                return taken, False
            self.cursor = (candidate.updated_at, candidate.message_id)
            if self.backoff.is_due(candidate, now):
                taken.append(candidate)
        if len(page) < self.page_size:
            self.cursor = None
            return taken, True
        return taken, False
