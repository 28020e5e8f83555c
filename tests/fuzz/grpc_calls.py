"""Calling the gateway for the fuzz tests, and what every answer must satisfy.

Every answer's code is one a caller can act on (never UNKNOWN, INTERNAL, UNAVAILABLE or
DEADLINE_EXCEEDED), an error names the field to fix, carries no stack trace and never
echoes the phone number it was sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc
from hypothesis import assume, event

from notifier.common.domain.phone import normalise_e164
from notifier.common.pb import whatsapp_pb2
from notifier.common.pb.whatsapp_pb2_grpc import WhatsAppServiceStub

OK = grpc.StatusCode.OK
# The RPCs the gateway does not serve yet (none now). Remove a name once its RPC is
# implemented, so the fuzz holds it to ALLOWED like every other method.
UNIMPLEMENTED_FOR_NOW: frozenset[str] = frozenset()
ALLOWED = frozenset(
    {
        OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
# Errors our code raises (rather than grpc's core): each names the field to fix first.
_FIELD_ERRORS = frozenset(ALLOWED - {OK, grpc.StatusCode.RESOURCE_EXHAUSTED})
SERVICE = "/whatsapp.WhatsAppService/"
REQUESTS: dict[str, tuple[type[Any], type[Any]]] = {
    "SendTemplateMessage": (
        whatsapp_pb2.SendTemplateMessageRequest,
        whatsapp_pb2.SendTemplateMessageResponse,
    ),
    "GetMessage": (whatsapp_pb2.GetMessageRequest, whatsapp_pb2.GetMessageResponse),
    "ListMessages": (whatsapp_pb2.ListMessagesRequest, whatsapp_pb2.ListMessagesResponse),
    "SendSessionMessage": (
        whatsapp_pb2.SendSessionMessageRequest,
        whatsapp_pb2.SendSessionMessageResponse,
    ),
    "GetOrderTimeline": (
        whatsapp_pb2.GetOrderTimelineRequest,
        whatsapp_pb2.GetOrderTimelineResponse,
    ),
}
SENDS = frozenset({"SendTemplateMessage", "SendSessionMessage"})
_DIGITS = re.compile(r"[0-9]")
# The request ids the gateway takes from a caller; others it replaces by one of its own.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_OUR_REQUEST_ID = re.compile(r"[0-9a-f]{16}")
# The documented example number that phone_number errors show ("e.g. +447700900123").
_EXAMPLE_NUMBER = "e.g. +447700900123"


@dataclass(frozen=True, slots=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    response: Any = None
    trailers: tuple[tuple[str, Any], ...] = ()


def allowed_codes(method: str) -> frozenset[grpc.StatusCode]:
    if method in UNIMPLEMENTED_FOR_NOW:
        return ALLOWED | {grpc.StatusCode.UNIMPLEMENTED}
    return ALLOWED


def call(method: Any, request: Any, metadata: tuple[tuple[str, str], ...] = ()) -> Outcome:
    try:
        response, rpc = method.with_call(request, timeout=15, metadata=metadata)
        return Outcome(OK, "", response, tuple(rpc.trailing_metadata() or ()))
    except grpc.RpcError as exc:
        trailers = tuple(exc.trailing_metadata() or ())
        return Outcome(exc.code(), exc.details() or "", None, trailers)


def raw_call(channel: grpc.Channel, method: str, data: bytes) -> Outcome:
    """Sends `data` as the serialized request, byte for byte."""
    response_type = REQUESTS[method][1]
    rpc = channel.unary_unary(
        SERVICE + method, request_serializer=None, response_deserializer=response_type.FromString
    )
    return call(rpc, data)


def check_answer(
    method: str,
    outcome: Outcome,
    request_bytes: int,
    max_bytes: int,
    phone: str = "",
    undecodable: bool = False,
) -> None:
    """What every answer to every request must satisfy. An error about bytes that are no
    request at all (`undecodable`) may name the whole `request` instead of a field."""
    code, details = outcome.code, outcome.details
    event(code.name)  # pytest --hypothesis-show-statistics shows how the codes spread
    assert code in allowed_codes(method), f"{method} answered {code.name}: {details[:300]!r}"
    if request_bytes > max_bytes:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{request_bytes} bytes: {code.name}"
    else:
        assert code != grpc.StatusCode.RESOURCE_EXHAUSTED, f"{request_bytes} bytes: {details}"
    assert "Traceback" not in details and 'File "' not in details, details
    if code in _FIELD_ERRORS:
        field = details.split(":", 1)[0]
        known = {f.name for f in REQUESTS[method][0].DESCRIPTOR.fields}
        if undecodable:
            known.add("request")
        assert field.split(".", 1)[0] in known, f"{code.name} names no field: {details[:300]!r}"
    assert_no_phone_echo(details, phone)


def assert_no_phone_echo(details: str, phone: str) -> None:
    """The number a request carried never comes back in an error, raw or normalised."""
    raw = phone.strip()
    digits = "".join(_DIGITS.findall(raw))
    if len(digits) < 7:
        return
    details = details.replace(_EXAMPLE_NUMBER, "")
    assert raw not in details, f"error echoes the phone number: {details[:300]!r}"
    assert "+" + digits not in details, f"error echoes the phone number: {details[:300]!r}"


def build_within_limit(
    request_type: Any, fields: dict[str, Any], max_bytes: int
) -> tuple[Any, int]:
    """The request made of `fields`, and at least its size, if that is within the limit.

    Larger requests are the business of test_a_request_over_the_size_limit_is_resource_
    exhausted: grpc takes 0.1-0.3 s to refuse each one, and a few hundred of them would eat
    the time budget. They are told apart before the message is built, since a map of
    thousands of entries sharing one long value would take gigabytes as protobuf.
    """
    low, high = _size_range(fields)
    assume(low <= max_bytes)
    request = request_type(**fields)
    if high <= max_bytes:
        return request, high
    size = int(request.ByteSize())  # upb serializes the message to count it
    assume(size <= max_bytes)
    return request, size


def _size_range(fields: dict[str, Any]) -> tuple[int, int]:
    """Bounds of the serialized size: the UTF-8 payload, plus at most 12 bytes of framing
    a value (24 a map entry)."""
    lengths: dict[int, int] = {}  # by id: a big map repeats one value object

    def utf8(text: str) -> int:
        if id(text) not in lengths:
            lengths[id(text)] = len(text.encode())
        return lengths[id(text)]

    low = high = 0
    for value in fields.values():
        if isinstance(value, str):
            low, high = low + utf8(value), high + utf8(value) + 12
        elif isinstance(value, dict):
            for key, item in value.items():
                size = utf8(key) + utf8(item)
                low, high = low + size, high + size + 24
        else:
            high += 12
    return low, high


def check_request_id(outcome: Outcome, sent: str | None) -> None:
    """Every answer carries a request id: the caller's when it is short and plain, else
    one of ours, so nothing odd a caller sends is echoed into logs and trailers."""
    [returned] = [v for k, v in outcome.trailers if k == "x-request-id"]
    if sent is not None and _REQUEST_ID.fullmatch(sent):
        assert returned == sent
    else:
        assert _OUR_REQUEST_ID.fullmatch(returned), returned


def assert_stored_as_sent(
    stub: WhatsAppServiceStub, message_id: int, fields: dict[str, Any]
) -> None:
    """SQL metacharacters, unicode and the rest come back exactly as they were sent."""
    request = whatsapp_pb2.GetMessageRequest(message_id=message_id)
    message = stub.GetMessage(request, timeout=10).message
    assert message.template_id == fields["template_id"]
    assert dict(message.parameters) == fields["parameters"]
    assert (message.order_id, message.customer_id) == (fields["order_id"], fields["customer_id"])
    # The gateway's own fast path must agree with the reference normalisation.
    assert message.phone_number == normalise_e164(fields["phone_number"])


def assert_listed_as_asked(messages: Any, fields: dict[str, Any]) -> None:
    assert len(messages) <= min(fields["limit"] or 50, 500)
    for message in messages:
        assert fields["order_id"] in ("", message.order_id)
        assert fields["customer_id"] in ("", message.customer_id)
        assert fields["status"] in (0, message.status)
    newest_first = [(m.created_at.ToNanoseconds(), m.message_id) for m in messages]
    assert newest_first == sorted(newest_first, reverse=True)
