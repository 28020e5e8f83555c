"""MessageService with fakes for its ports: what is written, published and answered,
for template and session messages, opted-out recipients and the 24-hour window."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from gateway_fakes import CATALOG, SEED

from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.errors import AlreadyExists, FailedPrecondition, InvalidRequest, NotFound
from notifier.gateway.model import (
    Accept,
    AcceptOutcome,
    Existing,
    Inserted,
    ListQuery,
    OptedOut,
    OrderRecords,
    RecipientState,
    SendRequest,
    SessionRequest,
    StoredMessage,
)
from notifier.gateway.service import MessageService
from notifier.gateway.timeline import MAX_TIMELINE_ENTRIES

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CUSTOMER = "+447700900123"
SESSION = SessionRequest(CUSTOMER, "Your driver is 10 minutes away.", "ORD-12345", "CUST-6789")


class FakeMessages:
    """The store's contract: a taken key wins over an opt-out, which writes nothing."""

    def __init__(self) -> None:
        self.rows: dict[MessageId, Accept] = {}
        self.events: list[str] = []
        self.opted_out: set[str] = set()
        self.last_inbound: dict[str, datetime] = {}

    def insert(self, command: Accept) -> AcceptOutcome:
        owner = self._owner(command.idempotency_key)
        if owner is not None:
            return owner
        if command.phone_number in self.opted_out:
            return OptedOut()
        message_id = MessageId(len(self.rows) + 1)
        self.rows[message_id] = command
        self.events.append("commit")
        return Inserted(message_id, NOW)

    def get(self, message_id: MessageId) -> StoredMessage | None:
        return None

    def list(self, query: ListQuery) -> list[StoredMessage]:
        self.events.append(f"list {query.limit}")
        return []

    def recipient_state(self, phone_number: str, idempotency_key: str | None) -> RecipientState:
        self.events.append("state")
        return RecipientState(
            phone_number in self.opted_out,
            self.last_inbound.get(phone_number),
            self._owner(idempotency_key),
        )

    def order_records(self, order_id: str, limit: int) -> OrderRecords:
        self.events.append(f"records {order_id} {limit}")
        return OrderRecords((), (), ())

    def _owner(self, key: str | None) -> Existing | None:
        for message_id, row in self.rows.items():
            if key and row.idempotency_key == key:
                return Existing(message_id, row.request_hash)
        return None


class FakePublisher:
    def __init__(self, events: list[str]) -> None:
        self.sent: list[SendCommand] = []
        self._events = events

    def publish(self, command: SendCommand) -> bool:
        self.sent.append(command)
        self._events.append("publish")
        return True


@pytest.fixture
def messages() -> FakeMessages:
    return FakeMessages()


@pytest.fixture
def publisher(messages: FakeMessages) -> FakePublisher:
    return FakePublisher(messages.events)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def service(messages: FakeMessages, publisher: FakePublisher, clock: FakeClock) -> MessageService:
    return MessageService(CATALOG, messages, messages, publisher, clock=clock)


def test_an_accept_commits_then_publishes_the_rendered_command(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher
) -> None:
    accepted = service.send(SEED)
    assert (accepted.message_id, accepted.duplicate) == (1, False)
    assert messages.events == ["commit", "publish"]
    assert publisher.sent == [
        SendCommand(
            message_id=MessageId(1),
            to="+1234567890",
            template_id="order_confirmation",
            content_sid="HX" + "a" * 32,
            content_variables={"1": "ORD-12345"},
            accepted_at=NOW,
        )
    ]


def test_a_bad_request_writes_and_publishes_nothing(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher
) -> None:
    with pytest.raises(InvalidRequest):
        service.send(dataclasses.replace(SEED, phone_number="+1abc"))
    assert messages.rows == {}
    assert publisher.sent == []


def test_the_same_key_and_request_returns_the_first_id_without_publishing_again(
    service: MessageService, publisher: FakePublisher
) -> None:
    request = dataclasses.replace(SEED, idempotency_key="k-1")
    first = service.send(request)
    again = service.send(request)
    assert again.message_id == first.message_id
    assert again.duplicate
    assert len(publisher.sent) == 1


def test_the_same_key_with_another_request_already_exists(
    service: MessageService, messages: FakeMessages
) -> None:
    service.send(dataclasses.replace(SEED, idempotency_key="k-2"))
    other = SendRequest(
        "+1234567890", "order_confirmation", {"order_id": "ORD-9"}, "ORD-9", "", "k-2"
    )
    with pytest.raises(AlreadyExists, match="idempotency_key"):
        service.send(other)
    assert len(messages.rows) == 1


def test_the_fault_point_runs_after_the_commit_and_before_the_publish(
    messages: FakeMessages, publisher: FakePublisher
) -> None:
    service = MessageService(
        CATALOG, messages, messages, publisher, lambda: messages.events.append("fault")
    )
    service.send(SEED)
    assert messages.events == ["commit", "fault", "publish"]


def test_a_publish_that_raises_still_answers_with_the_committed_id(
    messages: FakeMessages,
) -> None:
    class BrokenPublisher:
        def publish(self, command: SendCommand) -> bool:
            raise RuntimeError("librdkafka exploded")

    service = MessageService(CATALOG, messages, messages, BrokenPublisher())
    assert service.send(SEED).message_id == 1


def test_an_unknown_message_is_not_found(service: MessageService) -> None:
    with pytest.raises(NotFound, match="message_id"):
        service.get(42)


def test_list_applies_the_default_limit(service: MessageService, messages: FakeMessages) -> None:
    assert service.list("", "", None, 0, 0) == []
    assert messages.events == ["list 50"]


def test_the_same_key_with_another_request_does_not_echo_the_key(
    service: MessageService,
) -> None:
    key = "caller-secret-key-77"
    first = service.send(dataclasses.replace(SEED, idempotency_key=key))
    with pytest.raises(AlreadyExists) as caught:
        service.send(dataclasses.replace(SEED, order_id="ORD-OTHER", idempotency_key=key))
    assert key not in str(caught.value)
    assert str(caught.value) == (
        f"idempotency_key: was already used for a different request (message {first.message_id})"
    )


def test_a_template_to_an_opted_out_number_is_refused_and_writes_nothing(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher
) -> None:
    messages.opted_out.add("+1234567890")
    with pytest.raises(FailedPrecondition) as caught:
        service.send(SEED)
    assert str(caught.value).startswith("phone_number: ")
    assert "opted out" in str(caught.value)
    assert "1234567890" not in str(caught.value)
    assert messages.rows == {}
    assert publisher.sent == []


def test_a_retry_of_a_message_accepted_before_the_stop_gets_its_id(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher
) -> None:
    request = dataclasses.replace(SEED, idempotency_key="k-stop")
    first = service.send(request)
    messages.opted_out.add("+1234567890")
    again = service.send(request)
    assert (again.message_id, again.duplicate) == (first.message_id, True)
    assert len(publisher.sent) == 1


def test_a_session_message_inside_the_window_is_committed_then_published_with_its_body(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher
) -> None:
    messages.last_inbound[CUSTOMER] = NOW - timedelta(hours=23, minutes=59)
    accepted = service.send_session(SESSION)
    assert (accepted.message_id, accepted.duplicate) == (1, False)
    assert messages.events == ["state", "commit", "publish"]
    assert publisher.sent == [
        SendCommand(
            message_id=MessageId(1),
            to=CUSTOMER,
            template_id="",
            content_sid=None,
            content_variables={},
            accepted_at=NOW,
            body="Your driver is 10 minutes away.",
        )
    ]
    assert publisher.sent[0].is_session


@pytest.mark.parametrize("last_inbound", [None, NOW - timedelta(hours=24), NOW - timedelta(days=3)])
def test_a_session_message_outside_the_window_is_refused_naming_it(
    service: MessageService,
    messages: FakeMessages,
    publisher: FakePublisher,
    last_inbound: datetime | None,
) -> None:
    if last_inbound is not None:
        messages.last_inbound[CUSTOMER] = last_inbound
    with pytest.raises(FailedPrecondition) as caught:
        service.send_session(SESSION)
    assert str(caught.value).startswith("phone_number: the 24-hour customer-service window")
    assert "7700900123" not in str(caught.value)
    assert messages.rows == {}
    assert publisher.sent == []


def test_the_window_is_judged_by_the_services_clock(
    service: MessageService, messages: FakeMessages, clock: FakeClock
) -> None:
    messages.last_inbound[CUSTOMER] = NOW
    clock.now = NOW + timedelta(hours=24, microseconds=-1)
    assert service.send_session(SESSION).message_id == 1
    clock.now = NOW + timedelta(hours=24)
    with pytest.raises(FailedPrecondition, match="24-hour"):
        service.send_session(SESSION)


def test_a_session_message_to_an_opted_out_number_is_refused_even_inside_the_window(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher
) -> None:
    # The STOP itself was an inbound message: it opened the window.
    messages.last_inbound[CUSTOMER] = NOW - timedelta(minutes=1)
    messages.opted_out.add(CUSTOMER)
    with pytest.raises(FailedPrecondition, match="opted out"):
        service.send_session(SESSION)
    assert messages.rows == {}
    assert publisher.sent == []


def test_a_session_message_opted_out_between_the_check_and_the_insert_is_refused(
    messages: FakeMessages, publisher: FakePublisher
) -> None:
    class StopArrivesNow(FakeMessages):
        def recipient_state(self, phone_number: str, key: str | None) -> RecipientState:
            state = super().recipient_state(phone_number, key)
            self.opted_out.add(phone_number)
            return state

    racing = StopArrivesNow()
    racing.last_inbound[CUSTOMER] = NOW
    service = MessageService(CATALOG, racing, racing, publisher, clock=lambda: NOW)
    with pytest.raises(FailedPrecondition, match="opted out"):
        service.send_session(SESSION)
    assert racing.rows == {}
    assert publisher.sent == []


def test_a_bad_session_request_reads_and_writes_nothing(
    service: MessageService, messages: FakeMessages
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        service.send_session(dataclasses.replace(SESSION, body="a\x00b"))
    assert caught.value.field == "body"
    assert messages.events == []


def test_a_session_retry_gets_the_first_id_even_after_the_window_closed(
    service: MessageService, messages: FakeMessages, publisher: FakePublisher, clock: FakeClock
) -> None:
    messages.last_inbound[CUSTOMER] = NOW
    request = dataclasses.replace(SESSION, idempotency_key="s-1")
    first = service.send_session(request)
    clock.now = NOW + timedelta(days=2)
    again = service.send_session(request)
    assert (again.message_id, again.duplicate) == (first.message_id, True)
    assert len(publisher.sent) == 1


def test_a_session_key_reused_for_another_request_already_exists(
    service: MessageService, messages: FakeMessages
) -> None:
    messages.last_inbound[CUSTOMER] = NOW
    service.send_session(dataclasses.replace(SESSION, idempotency_key="s-2"))
    with pytest.raises(AlreadyExists, match=r"^idempotency_key: .*\(message 1\)$"):
        service.send_session(dataclasses.replace(SESSION, body="Other", idempotency_key="s-2"))
    # A template request with the key of a session message is another request too.
    with pytest.raises(AlreadyExists):
        service.send(dataclasses.replace(SEED, phone_number=CUSTOMER, idempotency_key="s-2"))
    assert len(messages.rows) == 1


def test_the_timeline_needs_an_order_id(service: MessageService, messages: FakeMessages) -> None:
    with pytest.raises(InvalidRequest) as caught:
        service.timeline("")
    assert caught.value.field == "order_id"
    assert messages.events == []


def test_the_timeline_reads_one_more_entry_than_it_shows(
    service: MessageService, messages: FakeMessages
) -> None:
    timeline = service.timeline("ORD-1")
    assert (timeline.order_id, timeline.entries, timeline.truncated) == ("ORD-1", (), False)
    assert messages.events == [f"records ORD-1 {MAX_TIMELINE_ENTRIES + 1}"]
