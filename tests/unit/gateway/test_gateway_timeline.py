"""An order's timeline: time order, a stable order for ties, causality, and the bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus
from notifier.gateway.model import (
    HistoryEntry,
    InboundReply,
    MessageStatusChange,
    OrderRecords,
    StoredMessage,
    TimelineItem,
)
from notifier.gateway.timeline import build_timeline

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def message(message_id: int, created: float) -> StoredMessage:
    return StoredMessage(
        MessageId(message_id), "+447700900123", "order_confirmation", {"order_id": "O"}, "O",
        None, MessageStatus.QUEUED, None, None, None, at(created), at(created),
    )  # fmt: skip


def change(message_id: int, status: MessageStatus, when: float) -> MessageStatusChange:
    return MessageStatusChange(MessageId(message_id), HistoryEntry(status, at(when), "twilio"))


def reply(inbound_id: int, when: float) -> InboundReply:
    return InboundReply(
        inbound_id, "+447700900123", "ok", None, None, 0, f"SM{inbound_id}", at(when)
    )


def describe(item: TimelineItem) -> str:
    if isinstance(item, StoredMessage):
        return f"message {item.message_id}"
    if isinstance(item, MessageStatusChange):
        return f"{item.message_id} {item.change.status.value}"
    return f"reply {item.inbound_id}"


def test_entries_come_in_time_order_whatever_order_the_records_are_in() -> None:
    records = OrderRecords(
        messages=(message(1, 0), message(2, 10)),
        changes=(
            change(2, MessageStatus.SENDING, 10.5),
            change(1, MessageStatus.READ, 30),
            change(1, MessageStatus.SENDING, 0.2),
        ),
        replies=(reply(7, 20),),
    )
    timeline = build_timeline("O", records, 1000)
    assert [describe(e.item) for e in timeline.entries] == [
        "message 1", "1 SENDING", "message 2", "2 SENDING", "reply 7", "1 READ",
    ]  # fmt: skip
    assert [e.at for e in timeline.entries] == sorted(e.at for e in timeline.entries)
    assert not timeline.truncated


def test_equal_times_come_out_in_one_stable_order() -> None:
    records = OrderRecords(
        messages=(message(2, 5), message(1, 5)),
        changes=(change(1, MessageStatus.DELIVERED, 5), change(1, MessageStatus.SENT, 5)),
        replies=(reply(9, 5), reply(3, 5)),
    )
    expected = ["message 1", "message 2", "1 SENT", "1 DELIVERED", "reply 3", "reply 9"]
    assert [describe(e.item) for e in build_timeline("O", records, 1000).entries] == expected
    shuffled = OrderRecords(records.messages[::-1], records.changes[::-1], records.replies[::-1])
    assert [describe(e.item) for e in build_timeline("O", shuffled, 1000).entries] == expected


def test_a_change_timed_before_its_message_by_another_clock_follows_the_message() -> None:
    records = OrderRecords((message(1, 10),), (change(1, MessageStatus.SENDING, 9.997),), ())
    entries = build_timeline("O", records, 1000).entries
    assert [describe(e.item) for e in entries] == ["message 1", "1 SENDING"]
    assert entries[1].at == at(10)
    # The change keeps the time it was reported with.
    assert isinstance(entries[1].item, MessageStatusChange)
    assert entries[1].item.change.occurred_at == at(9.997)


def test_the_timeline_is_cut_at_the_limit_keeping_the_oldest() -> None:
    records = OrderRecords(
        messages=tuple(message(i, i) for i in range(1, 5)),
        changes=(),
        replies=(reply(1, 0.5),),
    )
    timeline = build_timeline("O", records, 3)
    assert [describe(e.item) for e in timeline.entries] == ["reply 1", "message 1", "message 2"]
    assert timeline.truncated
    assert not build_timeline("O", records, 5).truncated
