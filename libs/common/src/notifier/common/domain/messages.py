"""The values that travel between processes, in domain form.

`payloads` converts them to and from the protobuf messages on Kafka; inside a
process only these dataclasses are passed around.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.optout import OptChange, classify
from notifier.common.domain.status import MessageStatus


@dataclass(frozen=True, slots=True)
class SendCommand:
    """A message to send, fixed by the gateway at accept time: a template (`content_sid`
    and its variables) or a session message (`body`, free-form text); exactly one of them.
    """

    message_id: MessageId
    to: str
    # Our template name, for logs and metrics; empty for a session message.
    template_id: str
    content_sid: str | None
    content_variables: Mapping[str, str]
    accepted_at: datetime
    body: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.content_sid is None) == (self.body is None):
            raise ValueError("a SendCommand needs exactly one of content_sid and body")

    @property
    def is_session(self) -> bool:
        """True for free-form text, which WhatsApp allows only inside the 24-hour window."""
        return self.body is not None


class Source(StrEnum):
    """Who reported a status change; kept in the status history."""

    GATEWAY = "gateway"
    SENDER = "sender"
    TWILIO = "twilio"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status a message reached, from the sender's API call or Twilio's callback.

    `message_id` is None when only Twilio's SID is known (a callback without our
    id in its URL); the recorder then finds the message by SID.
    """

    message_id: MessageId | None
    twilio_sid: TwilioSid | None
    status: MessageStatus
    occurred_at: datetime
    source: Source
    error_code: int | None = None
    error_message: str | None = None
    attempts: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent to one of our numbers, as Twilio posted it to the webhook.

    Numbers are E.164 without Twilio's `whatsapp:` prefix. Optional fields are None when
    Twilio did not send them. The body, profile name and WhatsApp id stay out of the
    repr: they are the customer's words, name and number, and must not reach logs.
    """

    twilio_sid: TwilioSid
    from_number: str
    to_number: str
    received_at: datetime
    body: str = field(default="", repr=False)
    profile_name: str | None = field(default=None, repr=False)
    wa_id: str | None = field(default=None, repr=False)
    button_payload: str | None = None
    button_text: str | None = None
    num_media: int = 0
    # Twilio's OptOutType ("STOP", "START", "HELP") when it recognised a keyword.
    opt_out_type: str | None = None
    messaging_service_sid: str | None = None

    @property
    def opt_change(self) -> OptChange | None:
        """Whether this message opts its sender out (STOP) or back in (START)."""
        return classify(self.body, self.opt_out_type)


# What the events topic carries, decoded.
Event: TypeAlias = StatusChange | InboundMessage
