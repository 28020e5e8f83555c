"""The gateway's use cases: accept a template message, get one, list them.

Accepting validates everything first, then commits the message with its outbox
entry in one transaction, and only then publishes: an id returned to a caller
is always durable. Adapters come in through the Protocols below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import AlreadyExists, NotFound
from notifier.gateway import metrics
from notifier.gateway.model import (
    AcceptCommand,
    Accepted,
    Existing,
    Inserted,
    ListQuery,
    SendRequest,
    StoredMessage,
)
from notifier.gateway.validation import (
    TemplateLookup,
    validate_list,
    validate_message_id,
    validate_send,
)

log = logging.getLogger(__name__)


class Accepts(Protocol):
    def insert(self, command: AcceptCommand) -> Inserted | Existing:
        """Commits message, history and outbox rows, or returns the key's owner."""
        ...


class Messages(Protocol):
    def get(self, message_id: MessageId) -> StoredMessage | None: ...

    def list(self, query: ListQuery) -> list[StoredMessage]: ...


class CommandPublisher(Protocol):
    def publish(self, command: SendCommand) -> bool: ...


def _no_fault() -> None:
    return None


class MessageService:
    def __init__(
        self,
        templates: TemplateLookup,
        accepts: Accepts,
        messages: Messages,
        publisher: CommandPublisher,
        after_commit: Callable[[], None] = _no_fault,
    ) -> None:
        self._templates = templates
        self._accepts = accepts
        self._messages = messages
        self._publisher = publisher
        # A test-only fault point (NOTIFIER_FAULT_POINT=gateway.after_commit).
        self._after_commit = after_commit

    def send(self, request: SendRequest) -> Accepted:
        """Validates, commits row + history + outbox, then publishes without waiting."""
        command = validate_send(request, self._templates)
        outcome = self._accepts.insert(command)
        if isinstance(outcome, Existing):
            return self._duplicate(command, outcome)
        self._after_commit()
        send = SendCommand(
            message_id=outcome.message_id,
            to=command.phone_number,
            template_id=command.template.name,
            content_sid=command.template.content_sid,
            content_variables=command.content_variables,
            accepted_at=outcome.created_at,
        )
        try:
            self._publisher.publish(send)
        except Exception:
            # The message is committed and the relay will publish it; failing the
            # call now would make the caller believe it was not accepted.
            log.exception("publish after commit failed", extra={"message_id": send.message_id})
        metrics.MESSAGES_ACCEPTED.labels(command.template.name).inc()
        log.info(
            "message accepted",
            extra={
                "message_id": outcome.message_id,
                "template": command.template.name,
                "parameter_count": len(command.parameters),
            },
        )
        return Accepted(outcome.message_id, duplicate=False)

    def get(self, message_id: int) -> StoredMessage:
        checked = validate_message_id(message_id)
        message = self._messages.get(checked)
        if message is None:
            raise NotFound(f"message_id: no message with id {checked}")
        return message

    def list(
        self,
        order_id: str,
        customer_id: str,
        status: MessageStatus | None,
        limit: int,
        offset: int,
    ) -> list[StoredMessage]:
        return self._messages.list(validate_list(order_id, customer_id, status, limit, offset))

    def _duplicate(self, command: AcceptCommand, existing: Existing) -> Accepted:
        if existing.request_hash != command.request_hash:
            raise AlreadyExists(
                f"idempotency_key: {command.idempotency_key!r} was already used for a "
                f"different request (message {existing.message_id})"
            )
        metrics.MESSAGES_DUPLICATE.inc()
        log.info(
            "duplicate request answered",
            extra={"message_id": existing.message_id, "template": command.template.name},
        )
        return Accepted(existing.message_id, duplicate=True)
