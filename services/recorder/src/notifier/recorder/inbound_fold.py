"""Collapses one batch of inbound messages into the rows the store writes.

Pure: each message once (by Twilio SID), and per phone number only the latest opt-out
change, because one statement may not update a row twice and only the latest counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from notifier.common.domain.ids import TwilioSid
from notifier.common.domain.messages import InboundMessage
from notifier.common.domain.optout import OptChange, keyword


@dataclass(frozen=True, slots=True)
class OptUpdate:
    """A number's opt-out state as the latest keyword of the batch left it."""

    phone_number: str
    change: OptChange
    keyword: str
    # When the message that made the change was received; the store applies it
    # only if it is newer than the change it already holds.
    changed_at: datetime
    twilio_sid: TwilioSid

    @property
    def opted_out(self) -> bool:
        return self.change is OptChange.OPT_OUT


def unique_messages(messages: Iterable[InboundMessage]) -> list[InboundMessage]:
    """The first copy of each message, ordered by SID (a stable lock order for the store)."""
    first: dict[str, InboundMessage] = {}
    for message in messages:
        first.setdefault(message.twilio_sid, message)
    return [first[sid] for sid in sorted(first)]


def latest_opt_changes(messages: Iterable[InboundMessage]) -> list[OptUpdate]:
    """Per number, the opt-out change received last, ordered by number.

    On equal receive times the first one seen wins, as in the store, where a
    change must be strictly newer to replace the stored one.
    """
    latest: dict[str, OptUpdate] = {}
    for message in messages:
        change = message.opt_change
        if change is None:
            continue
        current = latest.get(message.from_number)
        if current is None or message.received_at > current.changed_at:
            latest[message.from_number] = OptUpdate(
                phone_number=message.from_number,
                change=change,
                keyword=keyword(message.body, message.opt_out_type),
                changed_at=message.received_at,
                twilio_sid=message.twilio_sid,
            )
    return [latest[phone] for phone in sorted(latest)]
