"""An order's timeline from its records: one list in time order, stable and bounded. Pure.

Entries sort by time, then kind (a message accepted, a status reached, a reply), then
id, then status rank, so equal times always come out in the same order. A status
change is never placed before its message was accepted: the sender and Twilio's
callbacks are timed by other clocks than the database's, which may be a little behind.
"""

from __future__ import annotations

from datetime import datetime

from notifier.common.domain.ids import MessageId
from notifier.gateway.model import OrderRecords, OrderTimeline, TimelineEntry, TimelineItem

# GetOrderTimeline answers at most this many entries: the order's oldest.
MAX_TIMELINE_ENTRIES = 1000

_SortKey = tuple[datetime, int, int, int]


def build_timeline(order_id: str, records: OrderRecords, limit: int) -> OrderTimeline:
    """The first `limit` entries in time order; `truncated` says whether more exist.

    `records` must hold the order's `limit + 1` oldest messages and replies (or all of
    them), with every change of those messages. Then the first `limit` entries are
    exact, since a message left out was accepted after all of those taken and so were
    its changes, and `truncated` is exact too.
    """
    accepted_at: dict[MessageId, datetime] = {m.message_id: m.created_at for m in records.messages}
    keyed: list[tuple[_SortKey, TimelineEntry]] = []
    for message in records.messages:
        keyed.append(_entry(message.created_at, 0, message.message_id, 0, message))
    for change in records.changes:
        at = change.change.occurred_at
        first = accepted_at.get(change.message_id)
        if first is not None and at < first:
            at = first
        keyed.append(_entry(at, 1, change.message_id, change.change.status.rank, change))
    for reply in records.replies:
        keyed.append(_entry(reply.received_at, 2, reply.inbound_id, 0, reply))
    keyed.sort(key=lambda pair: pair[0])
    entries = tuple(entry for _, entry in keyed[:limit])
    return OrderTimeline(order_id, entries, truncated=len(keyed) > limit)


def _entry(
    at: datetime, kind: int, ident: int, rank: int, item: TimelineItem
) -> tuple[_SortKey, TimelineEntry]:
    return (at, kind, ident, rank), TimelineEntry(at, item)
