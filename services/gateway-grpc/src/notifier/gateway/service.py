"""The gateway's use cases: accept a template or session message, get one, list them,
and show an order's timeline.

Accepting validates everything first, then commits the message with its outbox
entry in one transaction, and only then publishes: an id returned to a caller
is always durable. A recipient who opted out (STOP) gets nothing; a session
message needs the recipient's open 24-hour window (`policy`). Adapters come in
through the Protocols below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.domain.phone import mask
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import AlreadyExists, NotFound
from notifier.gateway import metrics
from notifier.gateway.model import (
    Accept,
    AcceptCommand,
    Accepted,
    AcceptOutcome,
    Existing,
    Inserted,
    ListQuery,
    OptedOut,
    OrderRecords,
    OrderTimeline,
    RecipientState,
    SendRequest,
    SessionRequest,
    StoredMessage,
)
from notifier.gateway.policy import opted_out_error, session_refusal
from notifier.gateway.timeline import MAX_TIMELINE_ENTRIES, build_timeline
from notifier.gateway.validation import (
    TemplateLookup,
    validate_list,
    validate_message_id,
    validate_order_id,
    validate_send,
    validate_session,
)

log = logging.getLogger(__name__)

# The metrics' template label of session messages (no template name has parentheses).
SESSION_LABEL = "(session)"


class Accepts(Protocol):
    def insert(self, command: Accept) -> AcceptOutcome:
        """Commits message, history and outbox rows, or returns the key's owner, or
        OptedOut (then nothing is written)."""
        ...


class Messages(Protocol):
    def get(self, message_id: MessageId) -> StoredMessage | None:
        """The message with its status history."""
        ...

    def list(self, query: ListQuery) -> list[StoredMessage]: ...

    def recipient_state(self, phone_number: str, idempotency_key: str | None) -> RecipientState:
        """The number's opt-out and latest inbound message, and the key's owner."""
        ...

    def order_records(self, order_id: str, limit: int) -> OrderRecords:
        """At most `limit` messages and replies of the order (oldest first), with the
        status changes of those messages."""
        ...


class CommandPublisher(Protocol):
    def publish(self, command: SendCommand) -> bool: ...


def _no_fault() -> None:
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MessageService:
    def __init__(
        self,
        templates: TemplateLookup,
        accepts: Accepts,
        messages: Messages,
        publisher: CommandPublisher,
        after_commit: Callable[[], None] = _no_fault,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._templates = templates
        self._accepts = accepts
        self._messages = messages
        self._publisher = publisher
        # A test-only fault point (NOTIFIER_FAULT_POINT=gateway.after_commit).
        self._after_commit = after_commit
        self._clock = clock

    def send(self, request: SendRequest) -> Accepted:
        """Validates, commits row + history + outbox, then publishes without waiting.

        The opt-out check rides in the insert statement, so the hot path keeps one
        round trip."""
        return self._accept(validate_send(request, self._templates))

    def send_session(self, request: SessionRequest) -> Accepted:
        """As `send`, for free-form text: only inside the recipient's 24-hour window.

        A retry (same idempotency key) is answered from the key's owner before the
        window is looked at: the window may have closed since the first call."""
        command = validate_session(request)
        state = self._messages.recipient_state(command.phone_number, command.idempotency_key)
        if state.key_owner is not None:
            return self._duplicate(command, state.key_owner)
        refusal = session_refusal(state, self._clock())
        if refusal is not None:
            log.info("session message refused", extra={"to": mask(command.phone_number)})
            raise refusal
        return self._accept(command)

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

    def timeline(self, order_id: str) -> OrderTimeline:
        """The order's first MAX_TIMELINE_ENTRIES entries in time order."""
        checked = validate_order_id(order_id)
        # One more of each kind than is shown tells whether the timeline was cut.
        records = self._messages.order_records(checked, MAX_TIMELINE_ENTRIES + 1)
        return build_timeline(checked, records, MAX_TIMELINE_ENTRIES)

    def _accept(self, command: Accept) -> Accepted:
        outcome = self._accepts.insert(command)
        if isinstance(outcome, Existing):
            return self._duplicate(command, outcome)
        if isinstance(outcome, OptedOut):
            log.info(
                "message refused: recipient opted out",
                extra={"to": mask(command.phone_number), "template": _label(command)},
            )
            raise opted_out_error()
        self._after_commit()
        send = send_command(command, outcome)
        try:
            self._publisher.publish(send)
        except Exception:
            # The message is committed and the relay will publish it; failing the
            # call now would make the caller believe it was not accepted.
            log.exception("publish after commit failed", extra={"message_id": send.message_id})
        metrics.MESSAGES_ACCEPTED.labels(_label(command)).inc()
        log.info(
            "message accepted",
            extra={
                "message_id": outcome.message_id,
                "template": _label(command),
                "parameter_count": (
                    len(command.parameters) if isinstance(command, AcceptCommand) else 0
                ),
            },
        )
        return Accepted(outcome.message_id, duplicate=False)

    def _duplicate(self, command: Accept, existing: Existing) -> Accepted:
        if existing.request_hash != command.request_hash:
            # The key is the caller's secret as much as an id: it is not echoed back.
            raise AlreadyExists(
                "idempotency_key: was already used for a different request "
                f"(message {existing.message_id})"
            )
        metrics.MESSAGES_DUPLICATE.inc()
        log.info(
            "duplicate request answered",
            extra={"message_id": existing.message_id, "template": _label(command)},
        )
        return Accepted(existing.message_id, duplicate=True)


def send_command(command: Accept, inserted: Inserted) -> SendCommand:
    """What the sender gets: a template by content SID, or a session message's body."""
    if isinstance(command, AcceptCommand):
        return SendCommand(
            message_id=inserted.message_id,
            to=command.phone_number,
            template_id=command.template.name,
            content_sid=command.template.content_sid,
            content_variables=command.content_variables,
            accepted_at=inserted.created_at,
        )
    return SendCommand(
        message_id=inserted.message_id,
        to=command.phone_number,
        template_id="",
        content_sid=None,
        content_variables={},
        accepted_at=inserted.created_at,
        body=command.body,
    )


def _label(command: Accept) -> str:
    return command.template.name if isinstance(command, AcceptCommand) else SESSION_LABEL
