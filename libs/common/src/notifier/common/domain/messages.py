"""The values that travel between processes, in domain form.

`payloads` converts them to and from the protobuf messages on Kafka; inside a
process only these dataclasses are passed around.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.status import MessageStatus


@dataclass(frozen=True, slots=True)
class SendCommand:
    """A template message to send, rendered by the gateway at accept time."""

    message_id: MessageId
    to: str
    template_id: str
    content_sid: str
    content_variables: Mapping[str, str]
    accepted_at: datetime


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
