"""Twilio's form fields -> StatusChange / InboundMessage, or the reason they are refused.

Pure: no Flask, no Kafka, no clock (`now` comes in). Twilio adds parameters without
notice, so fields we do not use are ignored; a missing or malformed field we need
raises InvalidRequest naming it (400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import InboundMessage, Source, StatusChange
from notifier.common.domain.phone import normalise_e164
from notifier.common.domain.status import from_twilio
from notifier.common.errors import InvalidRequest

# "SM"/"MM" + 32 hex digits: a Message SID (MM for messages with media).
_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_POSITIVE = re.compile(r"^[1-9][0-9]{0,18}$")
_INTEGER = re.compile(r"^-?[0-9]{1,10}$")
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
_WHATSAPP = "whatsapp:"
# Twilio's status of an incoming message; every other value describes an outbound one.
_RECEIVED = "received"


class Kind(StrEnum):
    STATUS = "status"
    INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed callback we answer 200 but do not publish (Twilio must not retry it)."""

    reason: str  # a metric label
    detail: str  # safe to log: no number, no body


Parsed = StatusChange | InboundMessage | Ignored


def kind_of(form: Mapping[str, str]) -> Kind:
    """Tells a status callback from an incoming message by its fields (for POST /webhook)."""
    # Twilio sends both MessageStatus and its older twin SmsStatus; either one with a
    # value other than "received" makes this a status callback.
    status = _status_field(form).lower()
    if status == _RECEIVED:
        return Kind.INBOUND
    if status:
        return Kind.STATUS
    if form.get("From", "").strip():
        return Kind.INBOUND
    raise InvalidRequest("MessageStatus", "is required (or From, for an incoming message)")


def _status_field(form: Mapping[str, str]) -> str:
    return form.get("MessageStatus", "").strip() or form.get("SmsStatus", "").strip()


def parse(kind: Kind, form: Mapping[str, str], mid: str | None, now: datetime) -> Parsed:
    if kind is Kind.STATUS:
        return parse_status_callback(form, mid, now)
    return parse_inbound_message(form, now)


def parse_status_callback(form: Mapping[str, str], mid: str | None, now: datetime) -> Parsed:
    """A status callback; `mid` is our message id from the StatusCallback URL's query."""
    message_id = _message_id(mid)
    sid = _message_sid(form)
    raw_status = _status_field(form)
    if not raw_status:
        raise InvalidRequest("MessageStatus", "is required")
    status = from_twilio(raw_status)
    if status is None:
        # Twilio adds statuses without notice: record that we saw one, do not fail.
        return Ignored("unknown_status", f"MessageStatus={raw_status[:40]!r}")
    return StatusChange(
        message_id=message_id,
        twilio_sid=sid,
        status=status,
        occurred_at=now,
        source=Source.TWILIO,
        error_code=_error_code(form.get("ErrorCode", "")),
        error_message=form.get("ErrorMessage", "").strip() or None,
    )


def parse_inbound_message(form: Mapping[str, str], now: datetime) -> InboundMessage:
    """A message a customer sent us; numbers lose Twilio's `whatsapp:` prefix."""
    return InboundMessage(
        twilio_sid=_message_sid(form),
        from_number=_number(form, "From"),
        to_number=_number(form, "To"),
        received_at=now,
        body=form.get("Body", ""),
        profile_name=_optional(form, "ProfileName"),
        wa_id=_optional(form, "WaId"),
        button_payload=_optional(form, "ButtonPayload"),
        button_text=_optional(form, "ButtonText"),
        num_media=_count(form.get("NumMedia", "")),
        opt_out_type=(_optional(form, "OptOutType") or "").upper() or None,
        messaging_service_sid=_optional(form, "MessagingServiceSid"),
    )


def _message_id(raw: str | None) -> MessageId | None:
    if raw is None:
        return None
    text = raw.strip()
    if not _POSITIVE.match(text) or int(text) > _INT64_MAX:
        raise InvalidRequest("mid", "must be a positive integer (our message id)")
    return MessageId(int(text))


def _message_sid(form: Mapping[str, str]) -> TwilioSid:
    sid = form.get("MessageSid", "").strip()
    if not sid:
        raise InvalidRequest("MessageSid", "is required")
    if not _MESSAGE_SID.match(sid):
        raise InvalidRequest("MessageSid", "must be SM or MM followed by 32 hex digits")
    return TwilioSid(sid)


def _error_code(raw: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not _INTEGER.match(text) or abs(int(text)) > _INT32_MAX:
        raise InvalidRequest("ErrorCode", "must be an integer")
    return int(text) or None


def _count(raw: str) -> int:
    text = raw.strip()
    if not text:
        return 0
    if not _INTEGER.match(text) or not 0 <= int(text) <= _INT32_MAX:
        raise InvalidRequest("NumMedia", "must be a non-negative integer")
    return int(text)


def _number(form: Mapping[str, str], name: str) -> str:
    raw = form.get(name, "").strip()
    if raw.lower().startswith(_WHATSAPP):
        raw = raw[len(_WHATSAPP) :]
    return normalise_e164(raw, name)


def _optional(form: Mapping[str, str], name: str) -> str | None:
    return form.get(name, "").strip() or None
