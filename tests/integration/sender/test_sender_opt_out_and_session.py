"""The sender's last check before Twilio (opt-outs) and session messages sent as Body."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from notifier.common.domain.status import MessageStatus
from notifier.twilio_emulator import EmulatorServer, RecordedMessage
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


def failed_21610() -> float:
    return REGISTRY.get_sample_value("notifier_sender_failed_total", {"code": "21610"}) or 0.0


def test_a_queued_message_whose_recipient_opted_out_is_failed_and_never_sent(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    recipient, other = random_number(), random_number()
    queued = rows.insert(recipient)  # accepted while the customer was opted in
    rows.set_opt_out(recipient, True, "STOP")  # the STOP lands while it waits
    unaffected = rows.insert(other)
    before = failed_21610()
    commands.send(queued, unaffected)

    [event] = events.events_for(queued.message_id)
    assert (event.status, event.error_code, event.attempts) == (MessageStatus.FAILED, 21610, 0)
    assert event.error_message == (
        "not sent: the recipient opted out (STOP) after the message was accepted"
    )
    assert events.events_for(unaffected.message_id)[0].status is MessageStatus.SENDING
    assert sent_to(emulator, queued.message_id) == []
    assert [m.to for m in emulator.messages()] == [f"whatsapp:{other}"]
    assert failed_21610() == before + 1
    # The sender writes no message row: FAILED reaches the table through the recorder.
    assert rows.status_of(queued.message_id) == "QUEUED"


def test_a_recipient_who_opted_back_in_is_sent_to_again(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    recipient = random_number()
    rows.set_opt_out(recipient, True, "STOP")
    rows.set_opt_out(recipient, False, "START")
    command = rows.insert(recipient)
    commands.send(command)
    [event] = events.events_for(command.message_id)
    assert event.status is MessageStatus.SENDING
    assert len(sent_to(emulator, command.message_id)) == 1


def test_a_session_message_goes_out_as_body_without_a_content_sid(
    sender: RunningSender,
    rows: Rows,
    commands: Commands,
    events: TopicReader,
    emulator: EmulatorServer,
) -> None:
    command = rows.insert_session(random_number(), "Your driver is 5 minutes away 🚚")
    commands.send(command)
    [event] = events.events_for(command.message_id)
    [message] = sent_to(emulator, command.message_id)
    assert message.body == "Your driver is 5 minutes away 🚚"
    assert (message.content_sid, message.content_variables) == (None, None)
    assert message.to == f"whatsapp:{command.to}"
    assert message.status_callback == (
        f"https://hooks.example.com/webhook/status?mid={command.message_id}"
    )
    assert (event.status, event.twilio_sid) == (MessageStatus.SENDING, message.sid)
