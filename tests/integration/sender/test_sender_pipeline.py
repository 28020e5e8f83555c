"""The sender against PostgreSQL, the Tansu broker and the Twilio emulator, one replica."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from notifier.common.domain.status import MessageStatus
from notifier.common.kafka import DLQ_REASON_HEADER
from notifier.twilio_emulator import EmulatorServer, FaultRule, RecordedMessage
from tests.fixtures.waiting import wait_until
from tests.integration.sender.sender_support import (
    Commands,
    Rows,
    RunningSender,
    TopicReader,
    random_number,
)

pytestmark = pytest.mark.integration


def sent_to(emulator: EmulatorServer, message_id: int) -> list[RecordedMessage]:
    return [m for m in emulator.messages() if m.mid == str(message_id)]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_command_goes_out_as_a_content_template_and_reports_sending(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    command = rows.insert(
        random_number(),
        "shipment_dispatched",
        {"order_id": "ORD-1", "tracking_id": "TRK-9", "estimated_delivery": "Friday"},
    )
    commands.send(command)
    [event] = events.events_for(command.message_id)
    [message] = wait_until(lambda: emulator.messages(), timeout=5)
    assert message.to == f"whatsapp:{command.to}"
    assert message.from_ == sender.replica_sender
    assert message.content_sid == command.content_sid
    assert message.content_variables == {"1": "ORD-1", "2": "TRK-9", "3": "Friday"}
    assert message.status_callback == (
        f"https://hooks.example.com/webhook/status?mid={command.message_id}"
    )
    assert (event.status, event.twilio_sid, event.attempts) == (
        MessageStatus.SENDING,
        message.sid,
        1,
    )


@pytest.mark.parametrize(
    ("number", "code"), [("+15005550001", 21211), ("+15005550004", 21610), ("+15005550009", 21614)]
)
def test_a_permanent_twilio_error_fails_at_once_with_its_code(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
    number: str,
    code: int,
) -> None:
    retries_before = sum(
        counter("notifier_sender_retries_total", reason=r)
        for r in ("throttled", "server_error", "timeout", "connection")
    )
    command = rows.insert(number)
    commands.send(command)
    [event] = events.events_for(command.message_id)
    assert (event.status, event.error_code, event.attempts) == (MessageStatus.FAILED, code, 1)
    assert event.error_message
    assert emulator.stats().rejected_by_code == {code: 1}
    retries_after = sum(
        counter("notifier_sender_retries_total", reason=r)
        for r in ("throttled", "server_error", "timeout", "connection")
    )
    assert retries_after == retries_before


def test_a_server_error_is_retried_and_the_message_sent_once(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    emulator.fail_next(FaultRule(status=500))
    command = rows.insert(random_number())
    commands.send(command)
    [event] = events.events_for(command.message_id)
    assert (event.status, event.attempts) == (MessageStatus.SENDING, 2)
    stats = emulator.stats()
    assert (stats.accepted, stats.rejected_by_code, stats.duplicates) == (1, {20500: 1}, 0)
    assert len(sent_to(emulator, command.message_id)) == 1


def test_garbage_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    dead_letters: TopicReader,
) -> None:
    recipient = random_number()
    commands.raw(recipient.encode(), b"\xff\x00 definitely not protobuf")
    command = rows.insert(recipient)
    commands.send(command)
    events.events_for(command.message_id)
    [record] = wait_until(dead_letters.poll, timeout=5)
    raw = record.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = {name: value.encode() if isinstance(value, str) else value for name, value in pairs}
    assert record.value() == b"\xff\x00 definitely not protobuf"
    assert record.key() == recipient.encode()
    assert (headers[DLQ_REASON_HEADER] or b"").startswith(b"not a SendCommand")
    assert headers["dlq.source.topic"] == commands.topic.encode()
    assert int(headers["dlq.source.offset"] or b"-1") >= 0


def test_a_message_that_already_left_queued_is_not_sent_again(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    recipient = random_number()
    already = rows.insert(recipient, status="SENDING")
    after = rows.insert(recipient)
    skipped_before = counter("notifier_sender_skipped_total", reason="already_handled")
    commands.send(already, after)
    # One recipient's commands are handled in order: once `after` is out, `already` was seen.
    events.events_for(after.message_id)
    assert sent_to(emulator, already.message_id) == []
    assert [e for e in events.events() if e.message_id == already.message_id] == []
    assert counter("notifier_sender_skipped_total", reason="already_handled") == skipped_before + 1


def test_the_pair_limit_spaces_messages_to_one_recipient(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    recipient = random_number()
    first, second = rows.insert(recipient), rows.insert(recipient)
    commands.send(first, second)
    events.events_for(second.message_id)
    [a] = sent_to(emulator, first.message_id)
    [b] = sent_to(emulator, second.message_id)
    assert b.arrived_at - a.arrived_at >= 0.45  # interval 0.5 s, less clock/arrival jitter
