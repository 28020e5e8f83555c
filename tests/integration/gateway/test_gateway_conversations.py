"""Opt-outs, session messages, status history and order timelines on a real gateway.

Replies, STOP/START and status changes are written by the recorder's own store
(EventStore), exactly as the recorder writes them; the gateway is reached over grpc.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from gateway_support import TopicReader, query, row_counts

from notifier.common.db import Database
from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import InboundMessage, Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.pb import whatsapp_pb2
from notifier.common.pb.whatsapp_pb2_grpc import WhatsAppServiceStub
from notifier.gateway.model import Inserted, SessionRequest
from notifier.gateway.repository import MessageStore, OutboxStore
from notifier.gateway.validation import validate_session
from notifier.recorder.store import EventStore
from tests.fixtures.roles import login_user
from tests.fixtures.waiting import random_suffix

pytestmark = pytest.mark.integration

Stub = WhatsAppServiceStub
OUR_NUMBER = "+14155238886"
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def db(gateway_database_url: str) -> Iterator[Database]:
    pool = Database(gateway_database_url, "gateway-conversations-test", max_connections=2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def recorder(db: Database) -> EventStore:
    """The recorder's store: what it writes for replies, STOP/START and statuses."""
    return EventStore(db)


def new_number() -> str:
    return "+4477" + "".join(secrets.choice("0123456789") for _ in range(8))


def inbound(phone: str, body: str, received_at: datetime) -> InboundMessage:
    return InboundMessage(
        twilio_sid=TwilioSid("SM" + secrets.token_hex(16)),
        from_number=phone,
        to_number=OUR_NUMBER,
        received_at=received_at,
        body=body,
        profile_name="Ann",
    )


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def send_template(
    stub: Stub, phone: str, **fields: Any
) -> whatsapp_pb2.SendTemplateMessageResponse:
    request = whatsapp_pb2.SendTemplateMessageRequest(
        phone_number=phone,
        template_id="order_confirmation",
        parameters={"order_id": fields.get("order_id") or "ORD-1"},
        **fields,
    )
    return stub.SendTemplateMessage(request, timeout=5)


def send_session(stub: Stub, phone: str, body: str, **fields: Any) -> Any:
    request = whatsapp_pb2.SendSessionMessageRequest(phone_number=phone, body=body, **fields)
    return stub.SendSessionMessage(request, timeout=5)


def refused(call: Any, *args: Any, **fields: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **fields)
    return caught.value


def assert_topic_holds_only_stored_messages(stub: Stub, topic: TopicReader, url: str) -> None:
    """A good request and a read up to its record: the topic has one partition and one
    producer, so anything a refused request had produced would come before it."""
    sentinel = send_template(stub, "+447700900999").message_id
    topic.wait_for(sentinel)
    stored = {row[0] for row in query(url, "SELECT id FROM messages")}
    assert set(topic.ids()) <= stored


# --- opt-out ------------------------------------------------------------------------------


def test_a_template_to_an_opted_out_number_is_refused_and_writes_nothing(
    stub: Stub, topic: TopicReader, recorder: EventStore, gateway_database_url: str
) -> None:
    phone = new_number()
    recorder.apply([inbound(phone, "STOP", ago(minutes=1))])
    before = row_counts(gateway_database_url)

    error = refused(send_template, stub, phone, order_id="ORD-OPTED-OUT")

    assert error.code() == FAILED_PRECONDITION
    assert error.details().startswith("phone_number: the recipient opted out")
    assert phone not in error.details() and phone[1:] not in error.details()
    assert row_counts(gateway_database_url) == before
    assert query(gateway_database_url, "SELECT count(*) FROM messages WHERE phone_number = %s",
                 phone) == [(0,)]  # fmt: skip
    assert_topic_holds_only_stored_messages(stub, topic, gateway_database_url)


def test_stop_then_start_lets_messages_through_again(
    stub: Stub, topic: TopicReader, recorder: EventStore, gateway_database_url: str
) -> None:
    phone = new_number()
    recorder.apply([inbound(phone, "STOP", ago(minutes=2))])
    assert refused(send_template, stub, phone).code() == FAILED_PRECONDITION

    recorder.apply([inbound(phone, "START", ago(minutes=1))])
    assert query(gateway_database_url, "SELECT opted_out FROM opt_outs WHERE phone_number = %s",
                 phone) == [(False,)]  # fmt: skip
    sent = send_template(stub, phone)
    assert topic.wait_for(sent.message_id).command.to == phone
    # The START opened the window as any reply does: free-form text may follow.
    assert send_session(stub, phone, "Welcome back!").message_id > sent.message_id


def test_a_retry_of_a_message_accepted_before_the_stop_gets_the_first_id(
    stub: Stub, recorder: EventStore, gateway_database_url: str
) -> None:
    phone, key = new_number(), f"key-{random_suffix()}"
    first = send_template(stub, phone, idempotency_key=key)
    recorder.apply([inbound(phone, "STOP", ago(seconds=1))])
    before = row_counts(gateway_database_url)
    again = send_template(stub, phone, idempotency_key=key)
    assert (again.message_id, again.duplicate) == (first.message_id, True)
    assert row_counts(gateway_database_url) == before
    # A new request (another key) to the same number is refused.
    assert refused(send_template, stub, phone, idempotency_key=key + "-2").code() == (
        FAILED_PRECONDITION
    )


# --- session messages ---------------------------------------------------------------------


def test_a_session_message_inside_the_window_is_stored_and_published_with_its_body(
    stub: Stub, topic: TopicReader, recorder: EventStore, gateway_database_url: str
) -> None:
    phone, body = new_number(), "Your driver is 10 minutes away.\nReply here if needed."
    recorder.apply([inbound(phone, "Where is my parcel?", ago(hours=23, minutes=50))])

    sent = send_session(stub, phone, body, order_id="ORD-S1", customer_id="CUST-S1")

    assert (sent.status, sent.duplicate) == (whatsapp_pb2.QUEUED, False)
    [row] = query(
        gateway_database_url,
        """SELECT phone_number, template_id, content_sid, body, parameters, content_variables,
                  order_id, customer_id, status FROM messages WHERE id = %s""",
        sent.message_id,
    )
    assert row == (phone, None, None, body, {}, {}, "ORD-S1", "CUST-S1", "QUEUED")
    assert query(gateway_database_url, "SELECT status, source FROM message_status_history "
                 "WHERE message_id = %s", sent.message_id) == [("QUEUED", "gateway")]  # fmt: skip
    assert query(gateway_database_url, "SELECT count(*) FROM outbox WHERE message_id = %s",
                 sent.message_id) == [(1,)]  # fmt: skip
    record = topic.wait_for(sent.message_id)
    assert record.key == phone.encode()
    assert (record.command.body, record.command.content_sid) == (body, None)
    assert (record.command.template_id, dict(record.command.content_variables)) == ("", {})

    got = stub.GetMessage(whatsapp_pb2.GetMessageRequest(message_id=sent.message_id), timeout=5)
    assert (got.message.body, got.message.template_id) == (body, "")


@pytest.mark.parametrize("last_reply", [None, timedelta(hours=24, minutes=1), timedelta(days=9)])
def test_a_session_message_outside_the_window_is_refused_and_writes_nothing(
    stub: Stub,
    topic: TopicReader,
    recorder: EventStore,
    gateway_database_url: str,
    last_reply: timedelta | None,
) -> None:
    phone = new_number()
    if last_reply is not None:
        recorder.apply([inbound(phone, "Thanks", datetime.now(UTC) - last_reply)])
    before = row_counts(gateway_database_url)

    error = refused(send_session, stub, phone, "Hello again", idempotency_key=random_suffix())

    assert error.code() == FAILED_PRECONDITION
    assert "24-hour customer-service window is closed" in error.details()
    assert phone[1:] not in error.details()
    assert row_counts(gateway_database_url) == before
    assert_topic_holds_only_stored_messages(stub, topic, gateway_database_url)


def test_a_session_message_to_an_opted_out_number_is_refused_though_the_stop_opened_a_window(
    stub: Stub, recorder: EventStore, gateway_database_url: str
) -> None:
    phone = new_number()
    recorder.apply([inbound(phone, "STOP", ago(minutes=1))])
    before = row_counts(gateway_database_url)
    error = refused(send_session, stub, phone, "Are you sure?")
    assert error.code() == FAILED_PRECONDITION
    assert "opted out" in error.details()
    assert row_counts(gateway_database_url) == before


def test_session_messages_are_idempotent_like_templates(
    stub: Stub, recorder: EventStore, gateway_database_url: str
) -> None:
    phone, key = new_number(), f"session-key-{random_suffix()}"
    recorder.apply([inbound(phone, "Hi", ago(hours=1))])
    first = send_session(stub, phone, "Noted, thanks!", order_id="ORD-K", idempotency_key=key)
    before = row_counts(gateway_database_url)

    again = send_session(stub, phone, "Noted, thanks!", order_id="ORD-K", idempotency_key=key)
    assert (again.message_id, again.duplicate) == (first.message_id, True)
    assert row_counts(gateway_database_url) == before

    error = refused(send_session, stub, phone, "Other text", order_id="ORD-K", idempotency_key=key)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == (
        f"idempotency_key: was already used for a different request (message {first.message_id})"
    )
    assert key not in error.details()
    template = refused(send_template, stub, phone, idempotency_key=key)
    assert template.code() == grpc.StatusCode.ALREADY_EXISTS
    assert row_counts(gateway_database_url) == before


def test_the_relay_republishes_a_session_message_as_a_session_command(db: Database) -> None:
    command = validate_session(SessionRequest(new_number(), "Sent again by the relay"))
    inserted = MessageStore(db).insert(command)  # committed, never published
    assert isinstance(inserted, Inserted)
    with OutboxStore(db).claim_unpublished(0, 500) as claim:
        [relayed] = [c for c in claim.commands if c.message_id == inserted.message_id]
    assert relayed.is_session
    assert (relayed.body, relayed.content_sid, relayed.template_id) == (
        "Sent again by the relay", None, "",
    )  # fmt: skip
    assert relayed.to == command.phone_number


# --- history and timeline -----------------------------------------------------------------


def test_get_message_returns_the_status_history_in_time_order(
    stub: Stub, recorder: EventStore
) -> None:
    sent = send_template(stub, new_number())
    message_id = MessageId(sent.message_id)
    sid = TwilioSid("SM" + secrets.token_hex(16))
    now = datetime.now(UTC)

    def change(status: MessageStatus, second: int, source: Source) -> StatusChange:
        return StatusChange(message_id, sid, status, now + timedelta(seconds=second), source)

    # Out of order and twice, as callbacks come: the history holds each status once.
    recorder.apply([
        change(MessageStatus.READ, 3, Source.TWILIO),
        change(MessageStatus.SENDING, 1, Source.SENDER),
        change(MessageStatus.DELIVERED, 2, Source.TWILIO),
        change(MessageStatus.READ, 4, Source.TWILIO),
    ])  # fmt: skip

    message = stub.GetMessage(
        whatsapp_pb2.GetMessageRequest(message_id=message_id), timeout=5
    ).message

    assert message.status == whatsapp_pb2.READ
    history = [(h.status, h.source) for h in message.history]
    assert history == [
        (whatsapp_pb2.QUEUED, "gateway"),
        (whatsapp_pb2.SENDING, "sender"),
        (whatsapp_pb2.DELIVERED, "twilio"),
        (whatsapp_pb2.READ, "twilio"),
    ]
    times = [h.occurred_at.ToDatetime(tzinfo=UTC) for h in message.history]
    assert times == sorted(times)
    assert times[1] == now + timedelta(seconds=1)


def test_get_message_history_keeps_the_error_of_a_failure(stub: Stub, recorder: EventStore) -> None:
    sent = send_template(stub, new_number())
    failed = StatusChange(
        MessageId(sent.message_id), None, MessageStatus.FAILED, datetime.now(UTC), Source.SENDER,
        63024, "not on WhatsApp",
    )  # fmt: skip
    recorder.apply([failed])
    message = stub.GetMessage(
        whatsapp_pb2.GetMessageRequest(message_id=sent.message_id), timeout=5
    ).message
    last = message.history[-1]
    assert (last.status, last.error_code, last.error_message) == (
        whatsapp_pb2.FAILED, 63024, "not on WhatsApp",
    )  # fmt: skip


def describe(entry: whatsapp_pb2.TimelineEntry) -> tuple[Any, ...]:
    kind = entry.WhichOneof("entry")
    if kind == "message_accepted":
        return ("message", entry.message_accepted.message_id)
    if kind == "status_changed":
        change = entry.status_changed
        return ("status", change.message_id, whatsapp_pb2.MessageStatus.Name(change.change.status))
    return ("reply", entry.reply_received.body)


def test_the_order_timeline_shows_messages_statuses_and_replies_in_time_order(
    stub: Stub, recorder: EventStore, gateway_database_url: str
) -> None:
    phone, order = new_number(), f"ORD-{random_suffix()}"
    other = send_template(stub, phone, order_id=f"{order}-other")  # another order: not shown
    confirmation = send_template(stub, phone, order_id=order)
    # Accepted a minute ago (the other order's message before it, so this order is the
    # number's latest), so the statuses and the reply below all happened before now.
    start = ago(minutes=1)
    for message, created_at in ((other, start - timedelta(minutes=1)), (confirmation, start)):
        query(gateway_database_url, "UPDATE messages SET created_at = %s WHERE id = %s "
              "RETURNING id", created_at, message.message_id)  # fmt: skip
    sid = TwilioSid("SM" + secrets.token_hex(16))
    message_id = MessageId(confirmation.message_id)
    recorder.apply([
        StatusChange(message_id, sid, MessageStatus.DELIVERED, start + timedelta(seconds=2),
                     Source.TWILIO),
        StatusChange(message_id, sid, MessageStatus.SENDING, start + timedelta(seconds=1),
                     Source.SENDER),
        # The recorder links the reply to the number's latest order: this one.
        inbound(phone, "Can you deliver after 6pm?", start + timedelta(seconds=30)),
    ])  # fmt: skip
    answer = send_session(stub, phone, "Yes, between 6 and 8pm.", order_id=order)

    timeline = stub.GetOrderTimeline(
        whatsapp_pb2.GetOrderTimelineRequest(order_id=order), timeout=5
    )

    assert timeline.order_id == order
    assert [describe(e) for e in timeline.entries] == [
        ("message", confirmation.message_id),
        ("status", confirmation.message_id, "SENDING"),
        ("status", confirmation.message_id, "DELIVERED"),
        ("reply", "Can you deliver after 6pm?"),
        ("message", answer.message_id),
    ]
    times = [e.at.ToDatetime(tzinfo=UTC) for e in timeline.entries]
    assert times == sorted(times)
    accepted = timeline.entries[0].message_accepted
    assert (accepted.template_id, accepted.order_id, accepted.status) == (
        "order_confirmation", order, whatsapp_pb2.DELIVERED,
    )  # fmt: skip
    assert len(accepted.history) == 0  # its statuses are entries of their own
    assert timeline.entries[4].message_accepted.body == "Yes, between 6 and 8pm."
    reply = timeline.entries[3].reply_received
    assert (reply.phone_number, reply.profile_name, reply.num_media) == (phone, "Ann", 0)
    assert reply.twilio_sid.startswith("SM") and reply.inbound_id > 0
    assert other.message_id not in [e.message_accepted.message_id for e in timeline.entries]


def test_an_order_with_nothing_has_an_empty_timeline(stub: Stub) -> None:
    timeline = stub.GetOrderTimeline(
        whatsapp_pb2.GetOrderTimelineRequest(order_id=f"ORD-NONE-{random_suffix()}"), timeout=5
    )
    assert list(timeline.entries) == []


@pytest.mark.parametrize("order_id", ["", " ", "x" * 129, "ORD\n1"])
def test_the_timeline_refuses_a_missing_or_bad_order_id(stub: Stub, order_id: str) -> None:
    error = refused(
        stub.GetOrderTimeline, whatsapp_pb2.GetOrderTimelineRequest(order_id=order_id), timeout=5
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("order_id: ")


def test_the_timeline_is_bounded_to_the_oldest_1000_entries(
    stub: Stub, gateway_database_url: str
) -> None:
    order = f"ORD-BIG-{random_suffix()}"
    query(
        gateway_database_url,
        """INSERT INTO messages (phone_number, template_id, content_sid, order_id, created_at)
           SELECT '+447700900123', 'order_confirmation', 'HX' || md5('x'), %s,
                  '2025-01-01'::timestamptz + n * interval '1 second'
             FROM generate_series(1, 1001) AS n RETURNING id""",
        order,
    )
    timeline = stub.GetOrderTimeline(
        whatsapp_pb2.GetOrderTimelineRequest(order_id=order), timeout=5
    )
    assert len(timeline.entries) == 1000
    times = [e.at.ToDatetime(tzinfo=UTC) for e in timeline.entries]
    assert times[0] == datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert times[-1] == datetime(2025, 1, 1, 0, 16, 40, tzinfo=UTC)


def test_the_gateway_role_may_do_all_of_this_without_new_grants(
    recorder: EventStore, gateway_database_url: str
) -> None:
    """The reads and the session accept run as a member of notifier_gateway (0003_roles.sql)."""
    phone, order = new_number(), f"ORD-ROLE-{random_suffix()}"
    recorder.apply([inbound(phone, "Hi", ago(minutes=5))])
    with login_user(gateway_database_url, "notifier_gateway") as url:
        pool = Database(url, "gateway-role-test", max_connections=1)
        try:
            store = MessageStore(pool)
            state = store.recipient_state(phone, f"key-{random_suffix()}")
            assert (state.opted_out, state.key_owner) == (False, None)
            assert state.last_inbound_at is not None
            inserted = store.insert(validate_session(SessionRequest(phone, "Hello", order)))
            assert isinstance(inserted, Inserted)
            got = store.get(inserted.message_id)
            assert got is not None and got.body == "Hello"
            assert [h.status for h in got.history] == [MessageStatus.QUEUED]
            records = store.order_records(order, 10)
            assert [m.message_id for m in records.messages] == [inserted.message_id]
        finally:
            pool.close()
