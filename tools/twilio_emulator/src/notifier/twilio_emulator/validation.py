"""Turns a create-message form into a `CreateRequest`, or the error Twilio would answer instead.

Pure: the checks run in Twilio's order (To, sender, content, magic numbers). Rate limits and
injected failures are not decided here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

from notifier.twilio_emulator import catalog
from notifier.twilio_emulator.catalog import TwilioError

E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")
MESSAGING_SERVICE_SID: Final = re.compile(r"MG[0-9a-fA-F]{32}")
CONTENT_SID: Final = re.compile(r"HX[0-9a-fA-F]{32}")
CHANNELS: Final = ("whatsapp",)
MAX_BODY_CHARS: Final = 1600
MID_PARAM: Final = "mid"


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A create call that passed validation; `from_` or `messaging_service_sid` is set."""

    to: str
    from_: str | None
    messaging_service_sid: str | None
    content_sid: str | None
    content_variables: Mapping[str, str] | None
    body: str | None
    status_callback: str | None
    mid: str | None

    @property
    def sender(self) -> str:
        """The rate-limited sender: the `From` address, else the Messaging Service."""
        return self.from_ or self.messaging_service_sid or ""


def split_channel(address: str) -> tuple[str, str]:
    """`whatsapp:+4477...` -> ("whatsapp", "+4477..."); a bare number has channel ""."""
    prefix, sep, rest = address.partition(":")
    if sep and prefix in CHANNELS:
        return prefix, rest
    return "", address


def parse_mid(status_callback: str | None) -> str | None:
    """Our message id, carried as `?mid=` in the StatusCallback URL, or None."""
    if not status_callback:
        return None
    values = parse_qs(urlsplit(status_callback).query).get(MID_PARAM)
    return values[0] if values else None


def parse_content_variables(raw: str) -> dict[str, str] | None:
    """A JSON object of non-empty string values, or None when Twilio would answer 21656."""
    try:
        decoded: object = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    if not all(isinstance(value, str) and value for value in decoded.values()):
        return None
    return {str(key): str(value) for key, value in decoded.items()}


def parse_create(form: Mapping[str, str]) -> CreateRequest | TwilioError:
    """Validate one create-message form the way the Messages API does."""

    def field(name: str) -> str | None:
        return form.get(name) or None

    to, from_, service = field("To"), field("From"), field("MessagingServiceSid")
    if to is None:
        return catalog.to_required()
    if from_ is None and service is None:
        return catalog.sender_required()
    if service is not None and not MESSAGING_SERVICE_SID.fullmatch(service):
        return catalog.invalid_messaging_service(service)
    to_channel, to_number = split_channel(to)
    if not E164.fullmatch(to_number):
        return catalog.invalid_to(to)
    from_number = ""
    if from_ is not None:
        from_channel, from_number = split_channel(from_)
        if not E164.fullmatch(from_number):
            return catalog.invalid_from(from_)
        if from_channel != to_channel:
            return catalog.channel_mismatch()
    content = _parse_content(field("ContentSid"), field("ContentVariables"), field("Body"))
    if isinstance(content, TwilioError):
        return content
    content_sid, variables, body = content
    magic = catalog.magic_failure(to_number, from_number or service or "")
    if magic is not None:
        return magic
    status_callback = field("StatusCallback")
    return CreateRequest(
        to=to,
        from_=from_,
        messaging_service_sid=service,
        content_sid=content_sid,
        content_variables=variables,
        body=body,
        status_callback=status_callback,
        mid=parse_mid(status_callback),
    )


def _parse_content(
    content_sid: str | None, raw_variables: str | None, body: str | None
) -> tuple[str | None, dict[str, str] | None, str | None] | TwilioError:
    if content_sid is None and body is None:
        return catalog.content_sid_required() if raw_variables else catalog.body_required()
    if body is not None and len(body) > MAX_BODY_CHARS:
        return catalog.body_too_long()
    if content_sid is None:
        if raw_variables is not None:
            return catalog.content_sid_required()
        return None, None, body
    if not CONTENT_SID.fullmatch(content_sid):
        return catalog.invalid_content_sid(content_sid)
    if raw_variables is None:
        return content_sid, None, body
    variables = parse_content_variables(raw_variables)
    if variables is None:
        return catalog.invalid_content_variables()
    return content_sid, variables, body
