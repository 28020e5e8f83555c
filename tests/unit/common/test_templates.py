import pytest

from notifier.common.domain.templates import (
    Template,
    TemplateParameter,
    content_variables,
    placeholders,
    render,
    validate_params,
)
from notifier.common.errors import InvalidRequest

DELAY = Template(
    name="delay_notification",
    content_sid="HX" + "0" * 32,
    body="Order {{order_id}} is delayed: {{ reason }}. New ETA {{new_estimated_delivery}}.",
    parameters=(
        TemplateParameter("order_id", max_length=10),
        TemplateParameter("reason"),
        TemplateParameter("new_estimated_delivery"),
    ),
)
OPTIONAL = Template(
    name="pickup_ready",
    content_sid="HX" + "1" * 32,
    body="{{order_id}} ready at {{place}}",
    parameters=(TemplateParameter("order_id"), TemplateParameter("place", required=False)),
)
GOOD = {"order_id": "ORD-1", "reason": "weather", "new_estimated_delivery": "Friday"}


def test_placeholders_in_order_of_first_use() -> None:
    assert placeholders("{{b}} {{ a }} {{b}} {{c}}") == ["b", "a", "c"]


def test_valid_params_pass() -> None:
    validate_params(DELAY, GOOD)


def test_missing_param_names_it_and_counts() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_params(DELAY, {"order_id": "ORD-1", "reason": "x"})
    assert caught.value.field == "parameters.new_estimated_delivery"
    assert "expects 3 parameters, got 2" in str(caught.value)


def test_unknown_param_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_params(DELAY, {**GOOD, "coupon": "X"})
    assert caught.value.field == "parameters.coupon"


@pytest.mark.parametrize("value", ["", "   ", "ORD-123456789", "a\nb", "a\tb", "a     b", "a\x00b"])
def test_bad_values_are_rejected(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_params(DELAY, {**GOOD, "order_id": value})
    assert caught.value.field == "parameters.order_id"


def test_content_variables_are_positional_in_declared_order() -> None:
    assert content_variables(
        DELAY, {"reason": "r", "new_estimated_delivery": "n", "order_id": "o"}
    ) == {
        "1": "o",
        "2": "r",
        "3": "n",
    }


def test_optional_params_keep_their_position_when_left_out() -> None:
    validate_params(OPTIONAL, {"order_id": "A"})
    assert content_variables(OPTIONAL, {"order_id": "A"}) == {"1": "A"}
    assert content_variables(OPTIONAL, {"order_id": "A", "place": "B"}) == {"1": "A", "2": "B"}


def test_render_substitutes_every_placeholder() -> None:
    assert render(DELAY, GOOD) == "Order ORD-1 is delayed: weather. New ETA Friday."
