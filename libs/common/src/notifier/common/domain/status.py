"""The message status state machine: statuses only move forward.

Callbacks arrive late, twice and out of order (WhatsApp may skip `delivered`
and report `read`), so `apply_status` decides, from the current and incoming
status alone, whether the incoming one advances the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MessageStatus(StrEnum):
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"
    UNDELIVERED = "UNDELIVERED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


# FAILED and UNDELIVERED outrank every other status: once final, nothing moves
# the message again, and a final status overrides any progress before it.
_RANK: dict[MessageStatus, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.FAILED: 5,
    MessageStatus.UNDELIVERED: 5,
}
FINAL_STATUSES = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED})

# Twilio's MessageStatus values for outbound messages. `queued`/`accepted`/
# `scheduled` mean Twilio has taken the message: for us that is SENDING.
# `canceled` only happens to scheduled messages, which we never create, so it
# is treated as a failure rather than silently dropped.
_FROM_TWILIO: dict[str, MessageStatus] = {
    "accepted": MessageStatus.SENDING,
    "scheduled": MessageStatus.SENDING,
    "queued": MessageStatus.SENDING,
    "sending": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
    "undelivered": MessageStatus.UNDELIVERED,
    "canceled": MessageStatus.FAILED,
}


def from_twilio(raw: str) -> MessageStatus | None:
    """Maps Twilio's status string to ours; None for statuses we do not track."""
    return _FROM_TWILIO.get(raw.strip().lower())


@dataclass(frozen=True, slots=True)
class Advance:
    new: MessageStatus


@dataclass(frozen=True, slots=True)
class Ignore:
    reason: str


def apply_status(current: MessageStatus, incoming: MessageStatus) -> Advance | Ignore:
    """Returns Advance when `incoming` moves the message forward, else Ignore with why."""
    if current.is_final:
        return Ignore(f"{current} is final")
    if incoming.rank <= current.rank:
        if incoming == current:
            return Ignore(f"already {current}")
        return Ignore(f"{incoming} arrived after {current}")
    return Advance(incoming)


def furthest(statuses: list[MessageStatus], start: MessageStatus) -> MessageStatus:
    """Folds `apply_status` over statuses: the status a message ends in."""
    current = start
    for status in statuses:
        outcome = apply_status(current, status)
        if isinstance(outcome, Advance):
            current = outcome.new
    return current
