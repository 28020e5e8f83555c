from datetime import UTC, datetime

import pytest

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import SendCommand, Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.payloads import (
    PayloadError,
    decode_event,
    decode_send_command,
    encode_send_command,
    encode_status_change,
)
from notifier.common.pb import events_pb2

AT = datetime(2026, 11, 25, 12, 30, 1, 123000, tzinfo=UTC)


def test_send_command_round_trips() -> None:
    command = SendCommand(
        message_id=MessageId(42),
        to="+447700900123",
        template_id="order_confirmation",
        content_sid="HX" + "a" * 32,
        content_variables={"1": "ORD-1"},
        accepted_at=AT,
    )
    assert decode_send_command(encode_send_command(command)) == command


@pytest.mark.parametrize("source", [Source.SENDER, Source.TWILIO])
def test_status_changes_round_trip_through_the_envelope(source: Source) -> None:
    change = StatusChange(
        message_id=MessageId(7),
        twilio_sid=TwilioSid("SM" + "b" * 32),
        status=MessageStatus.UNDELIVERED,
        occurred_at=AT,
        source=source,
        error_code=30008,
        error_message="Unknown error",
    )
    assert decode_event(encode_status_change(change)) == change


def test_sid_only_callback_decodes_without_message_id() -> None:
    change = StatusChange(None, TwilioSid("SM1"), MessageStatus.READ, AT, Source.TWILIO)
    assert decode_event(encode_status_change(change)).message_id is None


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        events_pb2.SendCommand(message_id=0, to="+4477", content_sid="HX1").SerializeToString(),
        events_pb2.SendCommand(message_id=1, to="4477", content_sid="HX1").SerializeToString(),
        events_pb2.SendCommand(message_id=1, to="+4477").SerializeToString(),
    ],
)
def test_bad_commands_raise_payload_error(data: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_send_command(data)


@pytest.mark.parametrize(
    "event",
    [
        events_pb2.Event(),
        events_pb2.Event(send_result=events_pb2.SendResult(message_id=1)),  # no status
        events_pb2.Event(send_result=events_pb2.SendResult(status=2)),  # no id, no sid
        events_pb2.Event(send_result=events_pb2.SendResult(message_id=1, status=99)),
    ],
)
def test_bad_events_raise_payload_error(event: events_pb2.Event) -> None:
    with pytest.raises(PayloadError):
        decode_event(event.SerializeToString())
