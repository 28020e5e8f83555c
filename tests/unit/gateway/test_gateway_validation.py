"""Request -> command validation (templates and session messages), the canonical request
hashes, and the rules of ListMessages, GetMessage and GetOrderTimeline."""

from __future__ import annotations

import dataclasses

import pytest
from gateway_fakes import CATALOG, ORDER_CONFIRMATION, SEED

from notifier.common.domain.status import MessageStatus
from notifier.common.errors import FailedPrecondition, InvalidRequest, NotFound
from notifier.gateway.model import SendRequest, SessionRequest
from notifier.gateway.validation import (
    DEFAULT_LIMIT,
    MAX_BODY_LENGTH,
    MAX_LIMIT,
    request_hash,
    session_hash,
    validate_list,
    validate_message_id,
    validate_order_id,
    validate_send,
    validate_session,
)


def invalid_field(request: SendRequest) -> str:
    with pytest.raises(InvalidRequest) as caught:
        validate_send(request, CATALOG)
    assert caught.value.field in str(caught.value)
    return caught.value.field


def test_the_seed_request_is_accepted_with_positional_variables() -> None:
    command = validate_send(SEED, CATALOG)
    assert command.phone_number == "+1234567890"
    assert command.template is ORDER_CONFIRMATION
    assert command.content_variables == {"1": "ORD-12345"}
    assert (command.order_id, command.customer_id, command.idempotency_key) == (
        "ORD-12345",
        "CUST-6789",
        None,
    )


def test_variables_follow_the_templates_declared_order() -> None:
    request = SendRequest(
        "+447700900123",
        "delay_notification",
        {"new_estimated_delivery": "Friday", "reason": "storm", "order_id": "O-1"},
    )
    assert validate_send(request, CATALOG).content_variables == {
        "1": "O-1",
        "2": "storm",
        "3": "Friday",
    }


def test_empty_optional_ids_are_stored_as_null() -> None:
    command = validate_send(dataclasses.replace(SEED, order_id="", customer_id=""), CATALOG)
    assert command.order_id is None
    assert command.customer_id is None


@pytest.mark.parametrize("phone", ["12345", "+1abc", "", "   ", "+999123456789", "+1" + "2" * 40])
def test_a_bad_phone_number_names_phone_number(phone: str) -> None:
    assert invalid_field(dataclasses.replace(SEED, phone_number=phone)) == "phone_number"


@pytest.mark.parametrize("name", ["", "Order_Confirmation", "order-confirmation", "x" * 65])
def test_a_malformed_template_id_names_template_id(name: str) -> None:
    assert invalid_field(dataclasses.replace(SEED, template_id=name)) == "template_id"


def test_an_unknown_template_is_not_found_and_named() -> None:
    with pytest.raises(NotFound, match="pickup_ready"):
        validate_send(dataclasses.replace(SEED, template_id="pickup_ready"), CATALOG)


def test_a_disabled_template_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition, match="retired"):
        validate_send(dataclasses.replace(SEED, template_id="retired"), CATALOG)


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({}, "parameters.order_id"),
        ({"order_id": "O-1", "tracking_id": "T"}, "parameters.tracking_id"),
        ({"order_id": ""}, "parameters.order_id"),
        ({"order_id": "   "}, "parameters.order_id"),
        ({"order_id": "x" * 65}, "parameters.order_id"),
        ({"order_id": "O-1\nO-2"}, "parameters.order_id"),
        ({"order_id": "O-1\x00"}, "parameters.order_id"),
        ({"Order_ID": "O-1"}, "parameters"),
        ({f"p{i}": "v" for i in range(33)}, "parameters"),
    ],
)
def test_bad_parameters_name_the_parameter(parameters: dict[str, str], field: str) -> None:
    assert invalid_field(dataclasses.replace(SEED, parameters=parameters)) == field


@pytest.mark.parametrize("field", ["order_id", "customer_id", "idempotency_key"])
@pytest.mark.parametrize("value", ["x" * 129, "a\nb", "tab\there", "   "])
def test_bad_ids_name_their_field(field: str, value: str) -> None:
    assert invalid_field(dataclasses.replace(SEED, **{field: value})) == field


def test_ids_of_128_characters_are_fine() -> None:
    longest = "x" * 128
    command = validate_send(
        dataclasses.replace(SEED, order_id=longest, customer_id=longest, idempotency_key=longest),
        CATALOG,
    )
    assert command.idempotency_key == longest


def test_the_field_checks_run_before_the_template_lookup() -> None:
    request = dataclasses.replace(SEED, template_id="pickup_ready", order_id="x" * 200)
    assert invalid_field(request) == "order_id"


def test_the_hash_is_stable_and_ignores_parameter_order() -> None:
    first = request_hash("+1234567890", "t", {"a": "1", "b": "2"}, "O", "C")
    again = request_hash("+1234567890", "t", {"b": "2", "a": "1"}, "O", "C")
    assert first == again
    assert len(first) == 32


def test_the_hash_is_taken_over_the_normalised_request() -> None:
    spaced = validate_send(dataclasses.replace(SEED, phone_number=" +1 234 567 890"), CATALOG)
    assert spaced.request_hash == validate_send(SEED, CATALOG).request_hash


@pytest.mark.parametrize(
    "change",
    [
        {"phone_number": "+1234567891"},
        {"template_id": "u"},
        {"parameters": {"a": "1", "b": "3"}},
        {"parameters": {"a": "1"}},
        {"parameters": {"a": "1", "c": "2"}},
        {"order_id": "O2"},
        {"order_id": None},
        {"customer_id": "C2"},
        {"customer_id": None},
    ],
)
def test_the_hash_changes_with_every_field(change: dict[str, object]) -> None:
    base: dict[str, object] = {
        "phone_number": "+1234567890",
        "template_id": "t",
        "parameters": {"a": "1", "b": "2"},
        "order_id": "O",
        "customer_id": "C",
    }
    assert request_hash(**base) != request_hash(**{**base, **change})  # type: ignore[arg-type]


def test_order_and_customer_ids_cannot_be_swapped_without_changing_the_hash() -> None:
    assert request_hash("+1234567890", "t", {}, "X", None) != request_hash(
        "+1234567890", "t", {}, None, "X"
    )


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(0, DEFAULT_LIMIT), (1, 1), (50, 50), (500, 500), (501, MAX_LIMIT), (2**31 - 1, MAX_LIMIT)],
)
def test_limit_defaults_to_50_and_is_capped_at_500(limit: int, expected: int) -> None:
    assert validate_list("", "", None, limit, 0).limit == expected


@pytest.mark.parametrize(("limit", "offset", "field"), [(-1, 0, "limit"), (10, -1, "offset")])
def test_negative_limit_or_offset_names_the_field(limit: int, offset: int, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_list("", "", None, limit, offset)
    assert caught.value.field == field


def test_list_filters_are_none_when_empty() -> None:
    query = validate_list("", "C-1", MessageStatus.SENT, 10, 20)
    assert (query.order_id, query.customer_id, query.status) == (None, "C-1", MessageStatus.SENT)
    assert query.offset == 20


@pytest.mark.parametrize("value", [0, -1])
def test_message_id_must_be_positive(value: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_message_id(value)
    assert caught.value.field == "message_id"


SESSION = SessionRequest("+447700900123", "Your parcel is at the door.", "ORD-1", "CUST-1")


def invalid_session_field(request: SessionRequest) -> str:
    with pytest.raises(InvalidRequest) as caught:
        validate_session(request)
    assert str(caught.value).startswith(f"{caught.value.field}: ")
    return caught.value.field


def test_a_session_request_keeps_its_body_as_sent() -> None:
    body = "Line one\n\tindented, 😀 and ünïcode  "
    command = validate_session(
        dataclasses.replace(SESSION, phone_number="+44 7700 900123", body=body)
    )
    assert command.phone_number == "+447700900123"
    assert command.body == body
    assert (command.order_id, command.customer_id, command.idempotency_key) == (
        "ORD-1",
        "CUST-1",
        None,
    )


@pytest.mark.parametrize("body", ["x", "x" * MAX_BODY_LENGTH, "😀" * MAX_BODY_LENGTH])
def test_a_body_of_1_to_4096_characters_is_fine(body: str) -> None:
    assert validate_session(dataclasses.replace(SESSION, body=body)).body == body


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "is required"),
        ("x" * (MAX_BODY_LENGTH + 1), "at most 4096"),
        ("   \n\t ", "blank"),
        ("\u3000", "blank"),
        ("a\x00b", "U+0000 at character 2"),
        ("windows\r\nline", "U+000D"),
        ("\x1b[31mred", "U+001B"),
        ("del\x7f", "U+007F"),
        ("c1\x85", "U+0085"),
    ],
)
def test_a_bad_body_names_body_and_says_why(body: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_session(dataclasses.replace(SESSION, body=body))
    assert caught.value.field == "body"
    assert says in str(caught.value)


def test_a_body_is_never_echoed_in_its_error() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_session(dataclasses.replace(SESSION, body="secret words\x07"))
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone_number": "12345"}, "phone_number"),
        ({"phone_number": ""}, "phone_number"),
        ({"order_id": "x" * 129}, "order_id"),
        ({"customer_id": "a\nb"}, "customer_id"),
        ({"idempotency_key": "   "}, "idempotency_key"),
    ],
)
def test_bad_session_fields_name_their_field(change: dict[str, str], field: str) -> None:
    assert invalid_session_field(dataclasses.replace(SESSION, **change)) == field


def test_the_session_hash_covers_every_field_and_never_matches_a_template_hash() -> None:
    base = validate_session(SESSION).request_hash
    for change in (
        {"phone_number": "+447700900124"},
        {"body": "Other"},
        {"order_id": ""},
        {"customer_id": "CUST-2"},
    ):
        assert validate_session(dataclasses.replace(SESSION, **change)).request_hash != base
    assert validate_session(dataclasses.replace(SESSION, idempotency_key="k")).request_hash == base
    assert session_hash("+1", "b", None, None) != request_hash("+1", "b", {}, None, None)


def test_an_order_id_is_required_for_the_timeline() -> None:
    assert validate_order_id("ORD-12345") == "ORD-12345"
    for value, says in [("", "is required"), ("x" * 129, "at most 128"), (" ", "blank"),
                        ("O\x00", "control")]:  # fmt: skip
        with pytest.raises(InvalidRequest, match=says) as caught:
            validate_order_id(value)
        assert caught.value.field == "order_id"
