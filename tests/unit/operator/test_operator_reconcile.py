"""A MessageTemplate spec becomes the template row, or every problem with what to fix."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.common.domain.templates import Template, TemplateParameter
from notifier.operator.reconcile import Rejected, template_from_spec

SID = "HX" + "0123456789abcdef" * 2


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "templateId": "pickup_ready",
        "contentSid": SID,
        "language": "en",
        "category": "utility",
        "body": "Order {{order_id}} is ready at {{ locker }}.",
        "parameters": [
            {"name": "order_id", "required": True, "maxLength": 64},
            {"name": "locker", "required": False, "maxLength": 32},
        ],
        "enabled": True,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def problems(raw: dict[str, Any]) -> tuple[str, ...]:
    result = template_from_spec(raw)
    assert isinstance(result, Rejected), result
    return result.problems


def test_a_good_spec_becomes_the_template_with_parameters_in_declared_order() -> None:
    assert template_from_spec(spec()) == Template(
        name="pickup_ready",
        content_sid=SID,
        body="Order {{order_id}} is ready at {{ locker }}.",
        parameters=(
            TemplateParameter("order_id", True, 64),
            TemplateParameter("locker", False, 32),
        ),
        language="en",
        category="utility",
        enabled=True,
    )


def test_defaults_fill_language_enabled_required_and_max_length() -> None:
    result = template_from_spec(
        {
            "templateId": "hello",
            "contentSid": SID,
            "category": "marketing",
            "body": "Hi {{name}}",
            "parameters": [{"name": "name"}],
        }
    )
    assert isinstance(result, Template)
    assert (result.language, result.enabled) == ("en", True)
    assert result.parameters == (TemplateParameter("name", True, 1024),)


def test_a_body_without_placeholders_needs_no_parameters() -> None:
    result = template_from_spec(spec(body="Your parcel is on its way.", parameters=None))
    assert isinstance(result, Template)
    assert result.parameters == ()


def test_a_disabled_spec_is_still_a_template() -> None:
    result = template_from_spec(spec(enabled=False))
    assert isinstance(result, Template) and result.enabled is False


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"contentSid": None}, "spec.contentSid: is required"),
        ({"contentSid": "HX123"}, "spec.contentSid: 'HX123' is not valid (HX then 32 hex"),
        ({"contentSid": "MG" + "a" * 32}, "spec.contentSid: 'MG"),
        ({"templateId": None}, "spec.templateId: is required"),
        ({"templateId": "Pickup Ready"}, "spec.templateId: 'Pickup Ready' is not valid"),
        ({"category": "transactional"}, "spec.category: 'transactional' must be one of utility"),
        ({"category": None}, "spec.category: is required"),
        ({"language": "English"}, "spec.language: 'English' is not valid (e.g. en, en_US)"),
        ({"body": "   "}, "spec.body: is required"),
        ({"body": "x" * 1025}, "spec.body: is 1025 characters long; at most 1024"),
        ({"enabled": "yes"}, "spec.enabled: must be true or false"),
        ({"parameters": "order_id"}, "spec.parameters: must be a list"),
    ],
)
def test_each_bad_field_is_named_with_what_to_fix(overrides: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(spec(**overrides))), problems(
        spec(**overrides)
    )


def test_a_parameter_name_with_spaces_is_rejected() -> None:
    found = problems(spec(parameters=[{"name": "order id"}], body="Order {{order_id}}"))
    assert found[0].startswith("spec.parameters[0].name: 'order id' is not valid")


def test_a_parameter_declared_twice_is_rejected() -> None:
    found = problems(spec(parameters=[{"name": "order_id"}, {"name": "order_id"}]))
    assert "spec.parameters[1].name: 'order_id' is declared twice" in found


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"name": "order_id", "maxLength": 0}, "spec.parameters[0].maxLength: 0 must be 1..1024"),
        ({"name": "order_id", "maxLength": "64"}, "spec.parameters[0].maxLength: must be an int"),
        ({"name": "order_id", "required": "no"}, "spec.parameters[0].required: must be true or"),
        ("order_id", "spec.parameters[0]: must be an object with a name"),
    ],
)
def test_bad_parameter_attributes_are_named(item: object, expected: str) -> None:
    found = problems(spec(body="Order {{order_id}}", parameters=[item]))
    assert any(p.startswith(expected) for p in found), found


def test_too_many_parameters_are_rejected() -> None:
    names = [f"p{i}" for i in range(21)]
    body = " ".join(f"{{{{{n}}}}}" for n in names)
    found = problems(spec(body=body, parameters=[{"name": n} for n in names]))
    assert found == ("spec.parameters: has 21 entries; at most 20",)


def test_a_placeholder_that_is_not_declared_is_rejected() -> None:
    found = problems(spec(body="Order {{order_id}} at {{locker}} by {{courier}}"))
    assert found == (
        "spec.body: uses {{courier}} but spec.parameters does not declare 'courier'; "
        "declare it or remove it from the body",
    )


def test_a_required_parameter_missing_from_the_body_is_rejected() -> None:
    found = problems(spec(body="Your locker {{locker}} is ready."))
    assert found == (
        "spec.parameters: 'order_id' is declared but the body has no {{order_id}}; "
        "use it in the body or remove it",
    )


def test_an_optional_parameter_missing_from_the_body_is_rejected_too() -> None:
    # Declared order is Twilio's variable order: an unused declaration shifts every variable.
    found = problems(spec(body="Order {{order_id}} is ready."))
    assert found == (
        "spec.parameters: 'locker' is declared but the body has no {{locker}}; "
        "use it in the body or remove it",
    )


@pytest.mark.parametrize("body", ["Order {{order id}} {{locker}}", "Order {{order_id} {{locker}}"])
def test_a_malformed_placeholder_is_rejected(body: str) -> None:
    assert any("malformed placeholder" in p for p in problems(spec(body=body)))


def test_all_problems_are_reported_at_once_and_joined_in_the_message() -> None:
    result = template_from_spec({"body": "Hi {{name}}", "category": "news"})
    assert isinstance(result, Rejected)
    assert len(result.problems) == 4  # templateId, contentSid, category, undeclared {{name}}
    assert result.message == "; ".join(result.problems)
