"""The values the gateway's use cases take and return.

Plain frozen dataclasses: the servicer builds them from protobuf, the service
and repository pass them around. Nothing here does I/O or knows about gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

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
class Accepted:
    """What SendTemplateMessage answers: the id, and whether an earlier call made it."""

    message_id: MessageId
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ListQuery:
    """ListMessages after validation: filters are None when not given."""

    order_id: str | None
    customer_id: str | None
    status: MessageStatus | None
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One row of the messages table, as GetMessage and ListMessages return it."""

    message_id: MessageId
    phone_number: str
    template_id: str
    parameters: Mapping[str, str]
    order_id: str | None
    customer_id: str | None
    status: MessageStatus
    twilio_sid: str | None
    error_code: int | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
