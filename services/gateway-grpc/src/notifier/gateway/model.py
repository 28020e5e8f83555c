"""The values the gateway's use cases take and return.

Plain frozen dataclasses: the servicer builds them from protobuf, the service
and repository pass them around. Nothing here does I/O or knows about gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus
from notifier.common.domain.templates import Template


@dataclass(frozen=True, slots=True)
class SendRequest:
    """SendTemplateMessage as the caller sent it, not validated yet."""

    phone_number: str
    template_id: str
    parameters: Mapping[str, str]
    order_id: str = ""
    customer_id: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """SendSessionMessage as the caller sent it, not validated yet."""

    phone_number: str
    body: str = field(repr=False)
    order_id: str = ""
    customer_id: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class AcceptCommand:
    """A validated SendTemplateMessage: everything needed to store and publish it."""

    phone_number: str
    template: Template
    parameters: Mapping[str, str]
    content_variables: Mapping[str, str]
    order_id: str | None
    customer_id: str | None
    idempotency_key: str | None
    request_hash: bytes


@dataclass(frozen=True, slots=True)
class AcceptSessionCommand:
    """A validated SendSessionMessage: free-form text, stored and published like a template."""

    phone_number: str
    body: str = field(repr=False)  # the customer's conversation: never in logs
    order_id: str | None
    customer_id: str | None
    idempotency_key: str | None
    request_hash: bytes


# What the accept path stores: a template message or a session message.
Accept: TypeAlias = AcceptCommand | AcceptSessionCommand


@dataclass(frozen=True, slots=True)
class Inserted:
    """The accept created a new message (and its history and outbox rows)."""

    message_id: MessageId
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Existing:
    """The idempotency key was used before; `request_hash` is the first request's."""

    message_id: MessageId
    request_hash: bytes


@dataclass(frozen=True, slots=True)
class OptedOut:
    """The recipient is opted out (STOP): nothing was written."""


# What storing one accept did.
AcceptOutcome: TypeAlias = Inserted | Existing | OptedOut


@dataclass(frozen=True, slots=True)
class Accepted:
    """What SendTemplateMessage answers: the id, and whether an earlier call made it."""

    message_id: MessageId
    duplicate: bool


@dataclass(frozen=True, slots=True)
class RecipientState:
    """What decides whether a session message may go to a number, read in one query.

    `key_owner` is the message that already holds the request's idempotency key, if any:
    a retry is answered from it before the window and opt-out are looked at.
    """

    opted_out: bool
    last_inbound_at: datetime | None
    key_owner: Existing | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """ListMessages after validation: filters are None when not given."""

    order_id: str | None
    customer_id: str | None
    status: MessageStatus | None
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One status a message reached (a row of message_status_history)."""

    status: MessageStatus
    occurred_at: datetime
    source: str
    error_code: int | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One row of the messages table, as GetMessage and ListMessages return it.

    A template message has `template_id`; a session message has `body` instead.
    `history` is filled by GetMessage only, oldest first.
    """

    message_id: MessageId
    phone_number: str
    template_id: str | None
    parameters: Mapping[str, str]
    order_id: str | None
    customer_id: str | None
    status: MessageStatus
    twilio_sid: str | None
    error_code: int | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    body: str | None = field(default=None, repr=False)
    history: tuple[HistoryEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageStatusChange:
    """A status an order's message reached, for the order timeline."""

    message_id: MessageId
    change: HistoryEntry


@dataclass(frozen=True, slots=True)
class InboundReply:
    """A message the customer sent us, linked to an order (a row of inbound_messages)."""

    inbound_id: int
    phone_number: str
    body: str = field(repr=False)
    profile_name: str | None = field(repr=False)
    button_payload: str | None
    num_media: int
    twilio_sid: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRecords:
    """What the database holds about one order, each kind oldest first and bounded."""

    messages: tuple[StoredMessage, ...]
    changes: tuple[MessageStatusChange, ...]
    replies: tuple[InboundReply, ...]


# One item of an order's timeline: a message accepted, a status reached, a reply received.
TimelineItem: TypeAlias = StoredMessage | MessageStatusChange | InboundReply


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    item: TimelineItem


@dataclass(frozen=True, slots=True)
class OrderTimeline:
    """GetOrderTimeline's answer: `truncated` when the order had more than the limit."""

    order_id: str
    entries: tuple[TimelineEntry, ...]
    truncated: bool = False
