"""The servicer's protobuf mapping: history and body on Message, and each kind of entry."""

from __future__ import annotations

from datetime import UTC, datetime

from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus
from notifier.common.pb import whatsapp_pb2
from notifier.gateway.model import (
    HistoryEntry,
    InboundReply,
    MessageStatusChange,
    OrderTimeline,
    StoredMessage,
    TimelineEntry,
)
from notifier.gateway.servicer import message_to_pb, timeline_to_pb

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2025, 6, 1, 12, 0, 1, tzinfo=UTC)
SESSION = StoredMessage(
    MessageId(5), "+447700900123", None, {}, "ORD-1", None, MessageStatus.FAILED, None, 63016,
    "outside the window", T0, T1, body="See you at 6",
    history=(
        HistoryEntry(MessageStatus.QUEUED, T0, "gateway"),
        HistoryEntry(MessageStatus.FAILED, T1, "sender", 63016, "outside the window"),
    ),
)  # fmt: skip


def test_a_session_message_maps_with_its_body_and_history() -> None:
    pb = message_to_pb(SESSION)
    assert (pb.template_id, pb.body, dict(pb.parameters)) == ("", "See you at 6", {})
    assert [(h.status, h.source, h.error_code, h.error_message) for h in pb.history] == [
        (whatsapp_pb2.QUEUED, "gateway", 0, ""),
        (whatsapp_pb2.FAILED, "sender", 63016, "outside the window"),
    ]
    assert pb.history[1].occurred_at.ToDatetime(tzinfo=UTC) == T1


def test_each_kind_of_timeline_entry_fills_its_own_field() -> None:
    reply = InboundReply(3, "+447700900123", "Thanks!", "Ann", "YES", 1, "SM" + "a" * 32, T1)
    change = MessageStatusChange(MessageId(5), HistoryEntry(MessageStatus.SENDING, T1, "sender"))
    response = timeline_to_pb(
        OrderTimeline(
            "ORD-1",
            (TimelineEntry(T0, SESSION), TimelineEntry(T1, change), TimelineEntry(T1, reply)),
        )
    )
    assert response.order_id == "ORD-1"
    kinds = [e.WhichOneof("entry") for e in response.entries]
    assert kinds == ["message_accepted", "status_changed", "reply_received"]
    accepted, changed, replied = response.entries
    assert accepted.message_accepted.message_id == 5
    assert accepted.at.ToDatetime(tzinfo=UTC) == T0
    assert (changed.status_changed.message_id, changed.status_changed.change.status) == (
        5,
        whatsapp_pb2.SENDING,
    )
    r = replied.reply_received
    assert (r.inbound_id, r.body, r.profile_name, r.button_payload, r.num_media) == (
        3, "Thanks!", "Ann", "YES", 1,
    )  # fmt: skip
