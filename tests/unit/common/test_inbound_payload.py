"""The events-topic envelope of an inbound message: the webhook encodes it, the recorder decodes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifier.common.domain.ids import TwilioSid
from notifier.common.domain.messages import InboundMessage
from notifier.common.domain.optout import OptChange
from notifier.common.payloads import PayloadError, decode_event, encode_inbound_message
from notifier.common.pb import events_pb2

AT = datetime(2026, 11, 25, 12, 30, 1, 123000, tzinfo=UTC)
SID = TwilioSid("SM" + "a" * 32)


def full_message() -> InboundMessage:
    return InboundMessage(
        twilio_sid=SID,
        from_number="+447700900123",
        to_number="+14155238886",
        received_at=AT,
        body="STOP",
        profile_name="Ada",
        wa_id="447700900123",
        button_payload="p",
        button_text="t",
        num_media=2,
        opt_out_type="STOP",
        messaging_service_sid="MG" + "b" * 32,
    )


def test_an_inbound_message_is_encoded_with_every_field() -> None:
    event = events_pb2.Event.FromString(encode_inbound_message(full_message()))
    assert event.WhichOneof("payload") == "inbound_message"
    pb = event.inbound_message
    assert (pb.twilio_sid, pb.from_number, pb.to_number, pb.body) == (
        "SM" + "a" * 32,
        "+447700900123",
        "+14155238886",
        "STOP",
    )
    assert (pb.profile_name, pb.wa_id, pb.button_payload, pb.button_text) == (
        "Ada",
        "447700900123",
        "p",
        "t",
    )
    assert (pb.num_media, pb.opt_out_type, pb.messaging_service_sid) == (2, "STOP", "MG" + "b" * 32)
    assert pb.received_at.ToDatetime(tzinfo=UTC) == AT


def test_absent_optional_fields_are_empty_on_the_wire() -> None:
    message = InboundMessage(SID, "+447700900123", "+14155238886", AT)
    pb = events_pb2.Event.FromString(encode_inbound_message(message)).inbound_message
    assert (pb.body, pb.profile_name, pb.opt_out_type, pb.num_media) == ("", "", "", 0)


def test_an_inbound_message_round_trips_through_the_envelope() -> None:
    message = full_message()
    decoded = decode_event(encode_inbound_message(message))
    assert decoded == message
    assert isinstance(decoded, InboundMessage) and decoded.body == "STOP"
    assert decoded.opt_change is OptChange.OPT_OUT


def test_absent_optional_fields_decode_as_none() -> None:
    message = InboundMessage(SID, "+447700900123", "+14155238886", AT, body="hi")
    decoded = decode_event(encode_inbound_message(message))
    assert decoded == message
    assert isinstance(decoded, InboundMessage) and decoded.opt_change is None


def inbound_event(**fields: object) -> bytes:
    values: dict[str, object] = {
        "twilio_sid": SID,
        "from_number": "+447700900123",
        "to_number": "+14155238886",
        "body": "hi",
        **fields,
    }
    event = events_pb2.Event(inbound_message=events_pb2.InboundMessage(**values))  # type: ignore[arg-type]
    if "received_at" not in fields:
        event.inbound_message.received_at.FromDatetime(AT)
    return event.SerializeToString()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"twilio_sid": ""}, "twilio_sid is empty"),
        ({"from_number": "whatsapp:+447700900123"}, "from_number must be an E.164"),
        ({"from_number": ""}, "from_number must be an E.164"),
        ({"to_number": "447700900123"}, "to_number must be an E.164"),
        ({"num_media": -1}, "num_media must not be negative"),
        ({"received_at": None}, "received_at is missing"),
    ],
)
def test_an_unusable_inbound_message_is_a_payload_error(
    fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_event(inbound_event(**fields))
