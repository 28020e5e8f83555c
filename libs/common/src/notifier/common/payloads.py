"""Protobuf <-> domain: the only module where generated pb2 code meets the domain.

Decoding validates what the domain needs and raises PayloadError with the
reason, which consumers put on the dead-letter topic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import (
    Event,
    InboundMessage,
    SendCommand,
    Source,
    StatusChange,
)
from notifier.common.domain.status import MessageStatus
from notifier.common.pb import events_pb2, whatsapp_pb2

# The form domain.phone.normalise_e164 produces; payloads come from our own processes,
# so the form is checked, not re-parsed.
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class PayloadError(ValueError):
    """A Kafka payload that cannot be decoded into a valid domain value."""


def status_to_pb(status: MessageStatus) -> whatsapp_pb2.MessageStatus.ValueType:
    return whatsapp_pb2.MessageStatus.Value(status.value)


# Decoding runs once per event in the recorder's hot loop: look statuses up in a table.
_STATUS_BY_NUMBER: dict[int, MessageStatus] = {
    int(whatsapp_pb2.MessageStatus.Value(status.value)): status for status in MessageStatus
}
_UNSPECIFIED = whatsapp_pb2.MessageStatus.Value("MESSAGE_STATUS_UNSPECIFIED")


def status_from_pb(value: int) -> MessageStatus:
    status = _STATUS_BY_NUMBER.get(value)
    if status is None:
        if value == _UNSPECIFIED:
            raise PayloadError("status is unspecified")
        raise PayloadError(f"unknown status number {value}")
    return status


def timestamp_to_pb(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_SECONDS_MIN, _SECONDS_MAX = -62_135_596_800, 253_402_300_799


def timestamp_from_pb(ts: Timestamp) -> datetime:
    """Timestamp.ToDatetime(tzinfo=UTC) without its time-zone conversion (a third of the
    recorder's decoding time); the same range checks, microseconds truncated."""
    seconds, nanos = ts.seconds, ts.nanos
    if not _SECONDS_MIN <= seconds <= _SECONDS_MAX:
        raise PayloadError(f"invalid timestamp: seconds {seconds} outside years 1-9999")
    if not 0 <= nanos < 1_000_000_000:
        raise PayloadError(f"invalid timestamp: nanos {nanos} outside [0, 999999999]")
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def encode_send_command(command: SendCommand) -> bytes:
    pb = events_pb2.SendCommand(
        message_id=command.message_id,
        to=command.to,
        template_id=command.template_id,
        content_sid=command.content_sid or "",
        content_variables=dict(command.content_variables),
        body=command.body or "",
    )
    pb.accepted_at.CopyFrom(timestamp_to_pb(command.accepted_at))
    return pb.SerializeToString()


def decode_send_command(data: bytes) -> SendCommand:
    """A template command (content_sid) or a session command (body), never both."""
    pb = events_pb2.SendCommand()
    try:
        pb.ParseFromString(data)
    except DecodeError as exc:
        raise PayloadError(f"not a SendCommand: {exc}") from exc
    if pb.message_id <= 0:
        raise PayloadError("SendCommand.message_id must be positive")
    if not pb.to.startswith("+"):
        raise PayloadError("SendCommand.to must be an E.164 number")
    if pb.content_sid and pb.body:
        raise PayloadError("SendCommand sets both content_sid and body; set exactly one")
    if not pb.content_sid and not pb.body:
        raise PayloadError("SendCommand needs content_sid (template) or body (session message)")
    if pb.body and pb.content_variables:
        raise PayloadError("SendCommand.content_variables are for templates, not a body")
    return SendCommand(
        message_id=MessageId(pb.message_id),
        to=pb.to,
        template_id=pb.template_id,
        content_sid=pb.content_sid or None,
        content_variables=dict(pb.content_variables),
        accepted_at=timestamp_from_pb(pb.accepted_at),
        body=pb.body or None,
    )


def encode_status_change(change: StatusChange) -> bytes:
    """Encodes a sender result or a Twilio callback as an events-topic envelope."""
    event = events_pb2.Event()
    if change.source is Source.TWILIO:
        callback = event.status_callback
        callback.message_id = change.message_id or 0
        callback.twilio_sid = change.twilio_sid or ""
        callback.status = status_to_pb(change.status)
        callback.error_code = change.error_code or 0
        callback.error_message = change.error_message or ""
        callback.received_at.CopyFrom(timestamp_to_pb(change.occurred_at))
    else:
        result = event.send_result
        result.message_id = change.message_id or 0
        result.twilio_sid = change.twilio_sid or ""
        result.status = status_to_pb(change.status)
        result.error_code = change.error_code or 0
        result.error_message = change.error_message or ""
        result.attempts = change.attempts
        result.occurred_at.CopyFrom(timestamp_to_pb(change.occurred_at))
    return event.SerializeToString()


def encode_inbound_message(message: InboundMessage) -> bytes:
    """Encodes a customer's incoming message as an events-topic envelope."""
    event = events_pb2.Event()
    inbound = event.inbound_message
    inbound.twilio_sid = message.twilio_sid
    inbound.from_number = message.from_number
    inbound.to_number = message.to_number
    inbound.body = message.body
    inbound.profile_name = message.profile_name or ""
    inbound.wa_id = message.wa_id or ""
    inbound.button_payload = message.button_payload or ""
    inbound.button_text = message.button_text or ""
    inbound.num_media = message.num_media
    inbound.opt_out_type = message.opt_out_type or ""
    inbound.messaging_service_sid = message.messaging_service_sid or ""
    inbound.received_at.CopyFrom(timestamp_to_pb(message.received_at))
    return event.SerializeToString()


def decode_event(data: bytes) -> Event:
    """Decodes an events-topic envelope into the status change or inbound message it carries."""
    event = events_pb2.Event()
    try:
        event.ParseFromString(data)
    except DecodeError as exc:
        raise PayloadError(f"not an Event: {exc}") from exc
    kind = event.WhichOneof("payload")
    if kind == "send_result":
        r = event.send_result
        return _status_change(
            r.message_id, r.twilio_sid, r.status, r.occurred_at, Source.SENDER,
            r.error_code, r.error_message, r.attempts,
        )  # fmt: skip
    if kind == "status_callback":
        c = event.status_callback
        return _status_change(
            c.message_id, c.twilio_sid, c.status, c.received_at, Source.TWILIO,
            c.error_code, c.error_message, 0,
        )  # fmt: skip
    if kind == "inbound_message":
        return _inbound_message(event.inbound_message)
    raise PayloadError("Event carries no payload")


def _inbound_message(pb: events_pb2.InboundMessage) -> InboundMessage:
    if not pb.twilio_sid:
        raise PayloadError("InboundMessage.twilio_sid is empty")
    if not _E164.match(pb.from_number):
        raise PayloadError("InboundMessage.from_number must be an E.164 number")
    if not _E164.match(pb.to_number):
        raise PayloadError("InboundMessage.to_number must be an E.164 number")
    if pb.num_media < 0:
        raise PayloadError("InboundMessage.num_media must not be negative")
    if not pb.HasField("received_at"):
        raise PayloadError("InboundMessage.received_at is missing")
    return InboundMessage(
        twilio_sid=TwilioSid(pb.twilio_sid),
        from_number=pb.from_number,
        to_number=pb.to_number,
        received_at=timestamp_from_pb(pb.received_at),
        body=pb.body,
        profile_name=pb.profile_name or None,
        wa_id=pb.wa_id or None,
        button_payload=pb.button_payload or None,
        button_text=pb.button_text or None,
        num_media=pb.num_media,
        opt_out_type=pb.opt_out_type.upper() or None,
        messaging_service_sid=pb.messaging_service_sid or None,
    )


def _status_change(
    message_id: int,
    sid: str,
    status: int,
    at: Timestamp,
    source: Source,
    error_code: int,
    error_message: str,
    attempts: int,
) -> StatusChange:
    if message_id < 0:
        raise PayloadError("message_id must not be negative")
    if message_id == 0 and not sid:
        raise PayloadError("event names neither a message id nor a Twilio SID")
    return StatusChange(
        message_id=MessageId(message_id) if message_id else None,
        twilio_sid=TwilioSid(sid) if sid else None,
        status=status_from_pb(status),
        occurred_at=timestamp_from_pb(at),
        source=source,
        error_code=error_code or None,
        error_message=error_message or None,
        attempts=attempts,
    )
