"""The events-topic envelope of an inbound message (encoding; decoding comes with the recorder)."""

from __future__ import annotations

from datetime import UTC, datetime

from notifier.common.domain.ids import TwilioSid
from notifier.common.domain.messages import InboundMessage
from notifier.common.payloads import encode_inbound_message
from notifier.common.pb import events_pb2

AT = datetime(2026, 11, 25, 12, 30, 1, 123000, tzinfo=UTC)


def test_an_inbound_message_is_encoded_with_every_field() -> None:
    message = InboundMessage(
        twilio_sid=TwilioSid("SM" + "a" * 32),
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
    event = events_pb2.Event.FromString(encode_inbound_message(message))
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
    message = InboundMessage(TwilioSid("SM" + "a" * 32), "+447700900123", "+14155238886", AT)
    pb = events_pb2.Event.FromString(encode_inbound_message(message)).inbound_message
    assert (pb.body, pb.profile_name, pb.opt_out_type, pb.num_media) == ("", "", "", 0)
