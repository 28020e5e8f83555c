"""Collapses one batch of status changes into one update per message.

Pure: the domain's state machine decides the status a message ends in, so the
store writes a few set-based statements per batch instead of one per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import Source, StatusChange
from notifier.common.domain.status import Advance, MessageStatus, apply_status


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """The first report of one status of one message in the batch."""

    message_id: MessageId
    status: MessageStatus
    occurred_at: datetime
    source: Source
    error_code: int | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class MessageUpdate:
    """What a batch says about one message.

    `status` is the furthest status the batch reports (the database still only
    takes it if it is further than the stored one); the error fields belong to
    that status and are set only when it is final; `twilio_sid` is the first
    SID seen; `history` holds each distinct status once, first report first.
    """

    message_id: MessageId
    status: MessageStatus
    twilio_sid: TwilioSid | None
    error_code: int | None
    error_message: str | None
    history: tuple[HistoryEntry, ...]


class _Folding:
    __slots__ = ("error_code", "error_message", "history", "message_id", "sid", "status")

    def __init__(self, message_id: MessageId, change: StatusChange) -> None:
        self.message_id = message_id
        self.status = change.status
        self.sid = change.twilio_sid
        self.error_code, self.error_message = _errors_if_final(change)
        self.history: dict[MessageStatus, HistoryEntry] = {}
        self.add_history(change)

    def add(self, change: StatusChange) -> None:
        if isinstance(apply_status(self.status, change.status), Advance):
            self.status = change.status
            self.error_code, self.error_message = _errors_if_final(change)
        if self.sid is None:
            self.sid = change.twilio_sid
        self.add_history(change)

    def add_history(self, change: StatusChange) -> None:
        if change.status not in self.history:
            self.history[change.status] = HistoryEntry(
                message_id=self.message_id,
                status=change.status,
                occurred_at=change.occurred_at,
                source=change.source,
                error_code=change.error_code,
                error_message=change.error_message,
            )


def _errors_if_final(change: StatusChange) -> tuple[int | None, str | None]:
    if change.status.is_final:
        return change.error_code, change.error_message
    return None, None


def fold_changes(changes: Iterable[StatusChange]) -> list[MessageUpdate]:
    """One update per message, ordered by message id (a stable lock order for the store).

    Every change must name its message: the store resolves SID-only callbacks
    before folding. Arrival order only matters between statuses of equal rank
    (FAILED and UNDELIVERED): the first final status reported wins.
    """
    folding: dict[MessageId, _Folding] = {}
    for change in changes:
        if change.message_id is None:
            raise ValueError("fold_changes needs changes resolved to a message id")
        current = folding.get(change.message_id)
        if current is None:
            folding[change.message_id] = _Folding(change.message_id, change)
        else:
            current.add(change)
    return [
        MessageUpdate(
            message_id=message_id,
            status=state.status,
            twilio_sid=state.sid,
            error_code=state.error_code,
            error_message=state.error_message,
            history=tuple(state.history.values()),
        )
        for message_id, state in sorted(folding.items())
    ]
