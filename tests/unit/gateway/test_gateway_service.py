"""MessageService with fakes for its ports: what is written, published and answered."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from gateway_fakes import CATALOG, SEED

from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.errors import AlreadyExists, InvalidRequest, NotFound
from notifier.gateway.model import (
    AcceptCommand,
    Existing,
    Inserted,
    ListQuery,
    SendRequest,
    StoredMessage,
)
from notifier.gateway.service import MessageService

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeMessages:
    def __init__(self) -> None:
        self.rows: dict[MessageId, AcceptCommand] = {}
        self.events: list[str] = []

    def insert(self, command: AcceptCommand) -> Inserted | Existing:
        for message_id, row in self.rows.items():
            if command.idempotency_key and row.idempotency_key == command.idempotency_key:
                return Existing(message_id, row.request_hash)
        message_id = MessageId(len(self.rows) + 1)
        self.rows[message_id] = command
        self.events.append("commit")
        return Inserted(message_id, NOW)

    def get(self, message_id: MessageId) -> StoredMessage | None:
        return None

    def list(self, query: ListQuery) -> list[StoredMessage]:
        self.events.append(f"list {query.limit}")
        return []


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


@pytest.fixture
def service(messages: FakeMessages, publisher: FakePublisher) -> MessageService:
    return MessageService(CATALOG, messages, messages, publisher)


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
