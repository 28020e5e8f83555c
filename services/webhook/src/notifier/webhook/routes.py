"""HTTP entry points: Twilio's callbacks in, protobuf events out; health probes.

Each callback is checked (signature 403, form 400), translated by `forms`, published,
and answered 200 only after Kafka acknowledged it (503 otherwise, so Twilio retries).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from flask import Flask, Response, request
from werkzeug.datastructures import MultiDict
from werkzeug.wsgi import LimitedStream

from notifier.common.domain.messages import InboundMessage, StatusChange
from notifier.common.domain.phone import mask
from notifier.common.errors import InvalidRequest, TransientError
from notifier.common.payloads import encode_inbound_message, encode_status_change
from notifier.webhook.forms import Ignored, Kind, Parsed, kind_of, parse
from notifier.webhook.metrics import WebhookMetrics
from notifier.webhook.signature import SignatureChecker

log = logging.getLogger(__name__)

FORM_TYPE = "application/x-www-form-urlencoded"
RETRY_AFTER_SECONDS = "5"
# An empty TwiML answer: Twilio expects TwiML from a messaging webhook, and an empty
# <Response/> means "no reply".
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class Publisher(Protocol):
    """Where accepted events go: Kafka in production, a fake in route tests."""

    def publish(self, key: str, value: bytes) -> None:
        """Returns once the event is durable; raises TransientError otherwise."""

    def ready(self) -> bool:
        """Whether events can be published now (cheap: may be cached)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookRoutes:
    """The view functions, bound to their collaborators; `register` adds them to an app."""

    def __init__(
        self,
        publisher: Publisher,
        signatures: SignatureChecker,
        metrics: WebhookMetrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._publisher = publisher
        self._signatures = signatures
        self._metrics = metrics
        self._clock = clock

    def register(self, app: Flask) -> None:
        app.add_url_rule("/webhook", "webhook", self.webhook, methods=["POST"])
        app.add_url_rule("/webhook/status", "status", self.status, methods=["POST"])
        app.add_url_rule("/webhook/inbound", "inbound", self.inbound, methods=["POST"])
        app.add_url_rule("/healthz", "healthz", self.healthz, methods=["GET"])
        app.add_url_rule("/readyz", "readyz", self.readyz, methods=["GET"])

    def webhook(self) -> Response:
        return self._callback(None)

    def status(self) -> Response:
        return self._callback(Kind.STATUS)

    def inbound(self) -> Response:
        return self._callback(Kind.INBOUND)

    def healthz(self) -> Response:
        return _text(200, "ok")

    def readyz(self) -> Response:
        if self._publisher.ready():
            return _text(200, "ready")
        return _text(503, "kafka unreachable")

    def _callback(self, kind: Kind | None) -> Response:
        form = _read_form()
        if not self._signatures.is_valid(request, form):
            self._metrics.signature_failures.inc()
            log.warning(
                "signature rejected",
                extra={
                    "signed_url": self._signatures.url_for(request),
                    "signature_present": "X-Twilio-Signature" in request.headers,
                },
            )
            return Response(status=403)
        if request.mimetype != FORM_TYPE:
            return _text(400, f"Content-Type must be {FORM_TYPE}")
        try:
            parsed = parse(kind or kind_of(form), form, request.args.get("mid"), self._clock())
        except InvalidRequest as exc:
            log.info("callback refused", extra={"field": exc.field, "reason": exc.message})
            return _text(400, f"{exc.field}: {exc.message}")
        return self.publish(parsed)

    def now(self) -> datetime:
        return self._clock()

    def publish(self, parsed: Parsed) -> Response:
        """Publishes an accepted callback and answers it (200, or 503 when Kafka did not
        acknowledge); also the fast path's answer (fastpath.py)."""
        if isinstance(parsed, Ignored):
            self._metrics.ignored.labels(parsed.reason).inc()
            log.info("callback ignored", extra={"reason": parsed.reason, "detail": parsed.detail})
            return Response(status=200)
        if isinstance(parsed, StatusChange):
            kind, key, value = Kind.STATUS, _status_key(parsed), encode_status_change(parsed)
        else:
            kind, key, value = Kind.INBOUND, parsed.from_number, encode_inbound_message(parsed)
        try:
            self._publisher.publish(key, value)
        except TransientError as exc:
            self._metrics.publish_failures.inc()
            log.warning("event not published", extra={"kind": kind.value, "reason": str(exc)})
            response = _text(503, "event store unavailable, retry later")
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        self._metrics.published.labels(kind.value).inc()
        if isinstance(parsed, StatusChange):
            # Three callbacks per message: the recorder's "status applied" is the INFO line.
            log.debug("status callback published", extra=_status_context(parsed))
            return Response(status=200)
        log.info("inbound message published", extra=_inbound_context(parsed))
        return Response(_EMPTY_TWIML, status=200, mimetype="text/xml")


def _read_form() -> MultiDict[str, str]:
    """The form, read within MAX_CONTENT_LENGTH: a longer body raises 413.

    With a Content-Length, werkzeug refuses a long body before reading it. A chunked
    body is cut at the limit instead, so one more byte is asked for: there is none when
    the body fitted (a chunked body of exactly the limit is refused too).
    """
    form = request.form
    stream = request.stream
    chunked = request.content_length is None
    if chunked and isinstance(stream, LimitedStream) and stream.is_exhausted:
        stream.read(1)  # raises RequestEntityTooLarge
    return form


def _status_key(change: StatusChange) -> str:
    # Keyed by message id so one message's events stay in order; the SID when the
    # callback URL carried no id (the recorder then finds the message by SID).
    return str(change.message_id) if change.message_id is not None else str(change.twilio_sid)


def _status_context(change: StatusChange) -> dict[str, object]:
    return {
        "message_id": change.message_id,
        "twilio_sid": change.twilio_sid,
        "status": change.status.value,
        "error_code": change.error_code,
    }


def _inbound_context(message: InboundMessage) -> dict[str, object]:
    # Never the body or the profile name; the customer's number only masked.
    return {
        "twilio_sid": message.twilio_sid,
        "from": mask(message.from_number),
        "opt_out_type": message.opt_out_type,
        "num_media": message.num_media,
    }


def internal_error(path: str) -> Response:
    """The answer to a bug, called from an exception handler: the traceback is logged
    once under a short reference, and only the reference is answered (500)."""
    ref = secrets.token_hex(4)
    log.exception("unexpected error", extra={"ref": ref, "path": path})
    return Response(f"internal error (ref {ref})\n", status=500, mimetype="text/plain")


def _text(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")
