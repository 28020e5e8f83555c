from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import SendCommand, Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.payloads import (
    PayloadError,
    decode_event,
    decode_send_command,
    encode_send_command,
    encode_status_change,
    status_from_pb,
    status_to_pb,
    timestamp_from_pb,
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


def test_a_session_command_round_trips_with_its_body_and_no_content_sid() -> None:
    command = SendCommand(
        message_id=MessageId(43),
        to="+447700900123",
        template_id="",
        content_sid=None,
        content_variables={},
        accepted_at=AT,
        body="Your driver is 5 minutes away.",
    )
    decoded = decode_send_command(encode_send_command(command))
    assert decoded == command
    assert decoded.is_session and decoded.content_sid is None


def test_a_template_command_has_no_body() -> None:
    command = SendCommand(MessageId(1), "+447700900123", "t", "HX" + "a" * 32, {}, AT)
    decoded = decode_send_command(encode_send_command(command))
    assert (decoded.body, decoded.is_session) == (None, False)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"content_sid": "HX1", "body": "hi"}, "sets both content_sid and body"),
        ({}, "needs content_sid \\(template\\) or body"),
        ({"body": "hi", "content_variables": {"1": "x"}}, "content_variables are for templates"),
    ],
)
def test_a_command_must_be_exactly_one_of_template_and_session(
    fields: dict[str, object], reason: str
) -> None:
    data = events_pb2.SendCommand(message_id=1, to="+447700900123", **fields)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=reason):
        decode_send_command(data.SerializeToString())


def test_the_domain_command_refuses_neither_or_both_kinds() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SendCommand(MessageId(1), "+447700900123", "t", None, {}, AT)
    with pytest.raises(ValueError, match="exactly one"):
        SendCommand(MessageId(1), "+447700900123", "t", "HX1", {}, AT, body="hi")


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


@given(
    seconds=st.integers(min_value=-62_135_596_800, max_value=253_402_300_799),
    nanos=st.integers(min_value=0, max_value=999_999_999),
)
def test_timestamps_decode_as_protobuf_itself_decodes_them(seconds: int, nanos: int) -> None:
    ts = Timestamp(seconds=seconds, nanos=nanos)
    decoded = timestamp_from_pb(ts)
    assert decoded == ts.ToDatetime(tzinfo=UTC)
    assert decoded.tzinfo is UTC


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(-62_135_596_801, 0), (253_402_300_800, 0), (2**62, 0), (0, -1), (0, 1_000_000_000)],
)
def test_timestamps_out_of_protobufs_range_are_payload_errors(seconds: int, nanos: int) -> None:
    with pytest.raises(PayloadError, match="invalid timestamp"):
        timestamp_from_pb(Timestamp(seconds=seconds, nanos=nanos))


@pytest.mark.parametrize("status", list(MessageStatus))
def test_every_status_decodes_from_its_number(status: MessageStatus) -> None:
    assert status_from_pb(status_to_pb(status)) is status


@pytest.mark.parametrize(
    ("number", "reason"), [(0, "unspecified"), (99, "unknown status number 99")]
)
def test_status_numbers_we_do_not_know_are_payload_errors(number: int, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        status_from_pb(number)
