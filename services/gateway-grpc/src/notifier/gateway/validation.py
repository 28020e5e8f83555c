"""Pure request validation: SendRequest -> AcceptCommand, SessionRequest ->
AcceptSessionCommand, and the rules of ListMessages, GetMessage and GetOrderTimeline.

Everything a request can get wrong is found here, before anything is written;
each failure is an InvalidRequest naming the field. The template comes from a
`TemplateLookup`, which raises NotFound/FailedPrecondition itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Protocol

from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus
from notifier.common.domain.templates import (
    PARAMETER_NAME,
    Template,
    content_variables,
    validate_params,
)
from notifier.common.errors import InvalidRequest
from notifier.gateway.e164 import normalise_phone
from notifier.gateway.model import (
    AcceptCommand,
    AcceptSessionCommand,
    ListQuery,
    SendRequest,
    SessionRequest,
)

MAX_ID_LENGTH = 128
MAX_PARAMETERS = 32
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# WhatsApp's limit on the text of a message.
MAX_BODY_LENGTH = 4096
TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Any C0 control character (newlines and tabs included) or DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What a session body must not hold: C0 controls but newline and tab, DEL and C1 controls.
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bumped if the canonical form below ever changes, so old hashes never match new ones.
_HASH_VERSION = 1


class TemplateLookup(Protocol):
    def get(self, name: str) -> Template:
        """The enabled template `name`; NotFound or FailedPrecondition otherwise."""
        ...


def validate_send(request: SendRequest, templates: TemplateLookup) -> AcceptCommand:
    """Checks every field (cheap ones first), then the parameters against the template."""
    phone = normalise_phone(request.phone_number)
    template_name = _template_name(request.template_id)
    order_id = _optional_id("order_id", request.order_id)
    customer_id = _optional_id("customer_id", request.customer_id)
    idempotency_key = _optional_id("idempotency_key", request.idempotency_key)
    params = _parameter_names(request.parameters)
    template = templates.get(template_name)
    validate_params(template, params)
    return AcceptCommand(
        phone_number=phone,
        template=template,
        parameters=params,
        content_variables=content_variables(template, params),
        order_id=order_id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash(phone, template_name, params, order_id, customer_id),
    )


def request_hash(
    phone_number: str,
    template_id: str,
    parameters: Mapping[str, str],
    order_id: str | None,
    customer_id: str | None,
) -> bytes:
    """SHA-256 of the validated request in a canonical form (sorted parameters).

    The idempotency key itself is left out: requests are only compared when
    their keys are equal. Normalised values go in, so `+1 234 567 890` and
    `+1234567890` are the same request.
    """
    canonical = json.dumps(
        [
            _HASH_VERSION,
            phone_number,
            template_id,
            sorted(parameters.items()),
            order_id,
            customer_id,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).digest()


def validate_session(request: SessionRequest) -> AcceptSessionCommand:
    """Checks every field of a session message; the window and opt-out are the service's."""
    phone = normalise_phone(request.phone_number)
    body = _body(request.body)
    order_id = _optional_id("order_id", request.order_id)
    customer_id = _optional_id("customer_id", request.customer_id)
    idempotency_key = _optional_id("idempotency_key", request.idempotency_key)
    return AcceptSessionCommand(
        phone_number=phone,
        body=body,
        order_id=order_id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        request_hash=session_hash(phone, body, order_id, customer_id),
    )


def session_hash(
    phone_number: str, body: str, order_id: str | None, customer_id: str | None
) -> bytes:
    """SHA-256 of a validated session message, as `request_hash` is of a template one.

    The "session" marker stands where a template request has its phone number (always
    "+..."), so a session request never hashes like a template request.
    """
    canonical = json.dumps(
        [_HASH_VERSION, "session", phone_number, body, order_id, customer_id],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).digest()


def validate_order_id(value: str) -> str:
    """GetOrderTimeline's order_id: required, otherwise the rules of every id."""
    order_id = _optional_id("order_id", value)
    if order_id is None:
        raise InvalidRequest("order_id", "is required, e.g. ORD-12345")
    return order_id


def validate_list(
    order_id: str, customer_id: str, status: MessageStatus | None, limit: int, offset: int
) -> ListQuery:
    """limit 0 means the default (50), above 500 means 500; negatives are errors."""
    if limit < 0:
        raise InvalidRequest(
            "limit", f"must not be negative (got {limit}); 0 means {DEFAULT_LIMIT}"
        )
    if offset < 0:
        raise InvalidRequest("offset", f"must not be negative (got {offset})")
    return ListQuery(
        order_id=_optional_id("order_id", order_id),
        customer_id=_optional_id("customer_id", customer_id),
        status=status,
        limit=min(limit or DEFAULT_LIMIT, MAX_LIMIT),
        offset=offset,
    )


def validate_message_id(value: int) -> MessageId:
    if value <= 0:
        raise InvalidRequest("message_id", f"must be a positive integer (got {value})")
    return MessageId(value)


def _template_name(value: str) -> str:
    if not value:
        raise InvalidRequest("template_id", "is required, e.g. order_confirmation")
    if not TEMPLATE_NAME.match(value):
        raise InvalidRequest(
            "template_id", "must be 1-64 lowercase letters, digits or '_', starting with a letter"
        )
    return value


def _body(value: str) -> str:
    """1 to 4096 characters of text, not blank; newlines and tabs are its only controls.

    The text is kept as sent (WhatsApp shows it verbatim) and never echoed in an error.
    """
    if value == "":
        raise InvalidRequest("body", f"is required: 1 to {MAX_BODY_LENGTH} characters of text")
    if len(value) > MAX_BODY_LENGTH:
        raise InvalidRequest("body", f"is {len(value)} characters long; at most {MAX_BODY_LENGTH}")
    if not value.strip():
        raise InvalidRequest("body", "must not be blank")
    control = _BODY_CONTROL.search(value)
    if control is not None:
        raise InvalidRequest(
            "body",
            f"must not contain control characters other than newline and tab "
            f"(U+{ord(control.group()):04X} at character {control.start() + 1})",
        )
    return value


def _optional_id(field: str, value: str) -> str | None:
    """Empty means not given (stored as NULL); otherwise at most 128 printable characters."""
    if value == "":
        return None
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(field, f"is {len(value)} characters long; at most {MAX_ID_LENGTH}")
    if not value.strip():
        raise InvalidRequest(field, "must not be blank; leave it empty instead")
    if _CONTROL.search(value):
        raise InvalidRequest(field, "must not contain control characters or newlines")
    return value


def _parameter_names(params: Mapping[str, str]) -> dict[str, str]:
    """Bounds the parameter map before its names are echoed in any error message."""
    if len(params) > MAX_PARAMETERS:
        raise InvalidRequest("parameters", f"has {len(params)} entries; at most {MAX_PARAMETERS}")
    for name in params:
        if not PARAMETER_NAME.match(name):
            shown = name if len(name) <= 64 else name[:64] + "..."
            raise InvalidRequest(
                "parameters",
                f"has an invalid parameter name {shown!r}: "
                "use lowercase letters, digits and '_', starting with a letter",
            )
    return dict(params)
