"""The send use case, step by step: recently sent? status and opt-out check, one Twilio call,
the result event.

The ports it needs are declared here (`MessagesApi`, `StatusReader`, `ResultSink`);
when each step runs (pacing, retries) is the scheduler's business, not this module's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import SendCommand, Source, StatusChange
from notifier.common.domain.phone import mask
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import PermanentError, TransientError
from notifier.sender import metrics
from notifier.sender.recent_sends import RecentSends

log = logging.getLogger(__name__)


class TransientApiError(TransientError):
    """A Twilio call that may succeed if made again; `reason` labels the retry metric."""

    def __init__(
        self, message: str, *, reason: str, http_status: int | None = None, code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.http_status = http_status
        self.code = code


class PermanentApiError(PermanentError):
    """A Twilio call that the same request can never turn into a success."""

    def __init__(self, message: str, code: int | None, http_status: int | None = None) -> None:
        super().__init__(message, code)
        self.http_status = http_status


class NotSent(Exception):
    """A Twilio call given up before any of it was written: its `go()` answered no."""


# Asked right before a call's request is written (it may wait for the call's turn first):
# True lets it go, False gives it up.
Go = Callable[[], bool]


def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Accepted:
    """Twilio took the message: its SID and the status it answered with."""

    sid: TwilioSid
    status: str


class MessagesApi(Protocol):
    def create(self, command: SendCommand, status_callback_url: str, go: Go) -> Accepted:
        """Sends one message; raises TransientApiError or PermanentApiError.

        `go()` is called once, as late as possible before the request is written; when it
        returns False nothing is sent and NotSent is raised.
        """
        ...


@dataclass(frozen=True, slots=True)
class MessageState:
    """What decides whether a message may go to Twilio now."""

    status: MessageStatus
    # The keyword of the recipient's opt-out while they are opted out, else None.
    opted_out_by: str | None = None


class StatusReader(Protocol):
    def state_of(self, message_id: MessageId) -> MessageState | None:
        """The message's status and its recipient's opt-out, None if no such message;
        raises TransientError if the database is unavailable."""
        ...


class ResultSink(Protocol):
    def publish(self, change: StatusChange, on_acked: Callable[[], None]) -> None:
        """Queues the result event; calls `on_acked` once the broker has it."""
        ...


@dataclass(frozen=True, slots=True)
class Sent:
    accepted: Accepted


@dataclass(frozen=True, slots=True)
class Failed:
    code: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


@dataclass(frozen=True, slots=True)
class SentBefore:
    """This replica already got a SID for the message: report it again, call nobody."""

    sid: TwilioSid


Outcome = Sent | Failed | Skipped | SentBefore

# Twilio's "attempt to send to unsubscribed recipient": the code Twilio itself would
# answer with, so an opt-out we catch and one Twilio catches are counted alike.
OPTED_OUT_CODE = 21610


class SendService:
    """Checks, calls and reports; stateless apart from its ports, so any thread may use it."""

    def __init__(
        self,
        api: MessagesApi,
        statuses: StatusReader,
        sink: ResultSink,
        public_webhook_url: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        recent: RecentSends | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._statuses = statuses
        self._sink = sink
        self._webhook = public_webhook_url.rstrip("/")
        self._now = now
        self._recent = recent if recent is not None else RecentSends(capacity=0)
        self._clock = clock

    def status_callback_url(self, message_id: MessageId) -> str:
        """Where Twilio posts this message's statuses; `mid` ties them to our id."""
        return f"{self._webhook}/webhook/status?mid={message_id}"

    def check(self, command: SendCommand) -> Skipped | Failed | SentBefore | None:
        """None when the message may be sent now. SentBefore when this replica sent it
        lately; Skipped when it must not be sent (again); Failed when its recipient opted
        out while it waited. Raises TransientError."""
        # Before the status check: the SENDING event that would have moved the message
        # past QUEUED may be the very thing the broker lost.
        recent = self._recent.get(command.message_id, self._clock())
        if recent is not None:
            return SentBefore(recent.sid)
        state = self._statuses.state_of(command.message_id)
        if state is None:
            log.warning(
                "send command for an unknown message; skipped",
                extra={"message_id": command.message_id, "template": command.template_id},
            )
            return Skipped("unknown_message")
        if state.status is not MessageStatus.QUEUED:
            return Skipped("already_handled")
        if state.opted_out_by is not None:
            # The opt-out wins over a message accepted before it: never sent, and FAILED
            # (not skipped) so the message's record says why.
            return Failed(
                OPTED_OUT_CODE,
                f"not sent: the recipient opted out ({state.opted_out_by}) "
                "after the message was accepted",
            )
        return None

    def attempt(self, command: SendCommand, go: Go = _always) -> Accepted:
        """One Twilio call; raises TransientApiError or PermanentApiError, or NotSent when
        `go()` gave the call up before it was written (see `MessagesApi.create`)."""
        started = time.monotonic()
        outcome = "fail"
        try:
            accepted = self._api.create(command, self.status_callback_url(command.message_id), go)
            outcome = "ok"
            self._recent.remember(command.message_id, accepted.sid, self._clock())
            return accepted
        except NotSent:
            outcome = ""  # no call was made: nothing to time
            raise
        except TransientError:
            outcome = "retry"
            raise
        finally:
            if outcome:
                metrics.TWILIO_DURATION.labels(outcome).observe(time.monotonic() - started)

    def report(
        self, command: SendCommand, outcome: Outcome, attempts: int, on_acked: Callable[[], None]
    ) -> None:
        """Logs the outcome, counts it, and publishes the result event (none for a skip)."""
        context = {
            "message_id": command.message_id,
            "template": command.template_id,
            "kind": "session" if command.is_session else "template",
            "to": mask(command.to),
            "attempts": attempts,
        }
        if isinstance(outcome, Skipped):
            metrics.SKIPPED.labels(outcome.reason).inc()
            log.info("send skipped", extra={**context, "reason": outcome.reason})
            on_acked()
            return
        if isinstance(outcome, SentBefore):
            metrics.SKIPPED.labels("recently_sent").inc()
            log.info(
                "send skipped: sent recently; SENDING reported again",
                extra={**context, "twilio_sid": outcome.sid},
            )
            change = self._change(command, MessageStatus.SENDING, attempts, outcome.sid)
        elif isinstance(outcome, Sent):
            metrics.SENT.inc()
            log.info("message sent", extra={**context, "twilio_sid": outcome.accepted.sid})
            change = self._change(command, MessageStatus.SENDING, attempts, outcome.accepted.sid)
        else:
            metrics.FAILED.labels(str(outcome.code) if outcome.code else "none").inc()
            log.info(
                "message failed",
                extra={**context, "error_code": outcome.code, "error_message": outcome.message},
            )
            change = self._change(
                command, MessageStatus.FAILED, attempts, None, outcome.code, outcome.message
            )
        self._sink.publish(change, on_acked)

    def _change(
        self,
        command: SendCommand,
        status: MessageStatus,
        attempts: int,
        sid: TwilioSid | None,
        code: int | None = None,
        message: str | None = None,
    ) -> StatusChange:
        return StatusChange(
            message_id=command.message_id,
            twilio_sid=sid,
            status=status,
            occurred_at=self._now(),
            source=Source.SENDER,
            error_code=code,
            error_message=message,
            attempts=attempts,
        )
