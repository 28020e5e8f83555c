"""One wrapper around every WhatsAppService call: request id, error codes, metrics.

Our errors become their gRPC status in one table; anything else is a bug and
becomes INTERNAL with only `internal error (ref <id>)`, while the traceback is
logged once under that ref. Bytes that are no valid request message are the
caller's fault (INVALID_ARGUMENT naming `request`), not grpc's INTERNAL. Health and
reflection calls pass through untouched.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from notifier.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    NotifierError,
    TransientError,
)
from notifier.gateway import metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
SERVICE_PREFIX = "/whatsapp.WhatsAppService/"
# What the caller fixes, what it retries, and what is ours to fix (INTERNAL).
STATUS_CODES: tuple[tuple[type[NotifierError], grpc.StatusCode], ...] = (
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (TransientError, grpc.StatusCode.UNAVAILABLE),
)
_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# A caller's id is echoed into logs, so it must be short and plain.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

Behavior = Callable[[Any, Any], Any]


def status_code_for(error: NotifierError) -> grpc.StatusCode:
    for error_type, code in STATUS_CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL


class RequestIdFilter(logging.Filter):
    """Adds the current call's request id to every log record made while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class ServiceInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        # grpc asks for a handler on every call; wrap each method once.
        self._handlers: dict[str, Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method: str = details.method
        if not method.startswith(SERVICE_PREFIX):
            return continuation(details)
        wrapped = self._handlers.get(method)
        if wrapped is None:
            handler = continuation(details)
            if handler is None or handler.unary_unary is None:
                return handler
            wrapped = grpc.unary_unary_rpc_method_handler(
                _wrap(method.removeprefix(SERVICE_PREFIX), handler.unary_unary),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
            self._handlers[method] = wrapped
        return wrapped


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request whose bytes do not parse. grpc answers INTERNAL when a deserializer
    raises, before any handler runs; this stands in for the request instead, so the
    handler can answer INVALID_ARGUMENT."""

    details: str


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    request_type = getattr(deserialize, "__self__", None)
    name = getattr(getattr(request_type, "DESCRIPTOR", None), "full_name", "the request message")

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError, for a protobuf message
            # upb says why after the type's name: "String field had bad UTF-8", "Wire format
            # was corrupt"; it never quotes the bytes.
            reason = str(exc).rsplit(": ", 1)[-1] or type(exc).__name__
            return Undecodable(f"not a valid {name} message ({reason})")

    return tolerant


def _wrap(method: str, behavior: Behavior) -> Behavior:
    # Metric children are looked up once, not on every call (`labels` takes a lock).
    duration = metrics.REQUEST_DURATION.labels(method)
    counters: dict[grpc.StatusCode, Any] = {}

    def serve(request: Any, context: Any) -> Any:
        request_id = _request_id(context)
        token = _REQUEST_ID.set(request_id)
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if isinstance(request, Undecodable):
                raise InvalidRequest("request", request.details)
            return behavior(request, context)
        except NotifierError as exc:
            code = status_code_for(exc)
            context.abort(code, str(exc))
        except NotImplementedError:
            # What the generated base servicer raises for a method we do not serve.
            code = grpc.StatusCode.UNIMPLEMENTED
            context.abort(code, "method not implemented")
        except Exception:
            code = grpc.StatusCode.INTERNAL
            ref = uuid.uuid4().hex[:12]
            log.exception("unexpected error", extra={"ref": ref, "method": method})
            context.abort(code, f"internal error (ref {ref})")
        finally:
            elapsed = time.perf_counter() - started
            duration.observe(elapsed)
            counter = counters.get(code)
            if counter is None:
                counter = counters[code] = metrics.REQUESTS.labels(method, code.name)
            counter.inc()
            log.debug(
                "rpc",
                extra={"method": method, "code": code.name, "duration_ms": elapsed * 1000},
            )
            _REQUEST_ID.reset(token)

    return serve


def _request_id(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _VALID_REQUEST_ID.match(value):
            return value
    # 64 random bits correlate log lines; they need not be unguessable, so no
    # uuid4 (a getrandom system call and a UUID object on every call).
    return f"{random.getrandbits(64):016x}"
