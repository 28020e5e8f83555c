import pytest

from notifier.common.domain.phone import mask, normalise_e164
from notifier.common.errors import InvalidRequest


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1234567890", "+1234567890"),  # the seed's example
        ("+447700900123", "+447700900123"),
        (" +44 7700 900123 ", "+447700900123"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("+15005550006", "+15005550006"),
    ],
)
def test_valid_numbers_are_normalised(raw: str, expected: str) -> None:
    assert normalise_e164(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "12345", "+1abc", "447700900123", "+", "+0123456789", "+999123456789",
     "+1234567890123456789", "whatsapp:+447700900123", "+44 7700 900123; DROP TABLE"],
)  # fmt: skip
def test_malformed_numbers_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_e164(raw)
    assert caught.value.field == "phone_number"


def test_field_name_is_passed_through() -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_e164("12345", field="to")
    assert caught.value.field == "to"


def test_mask_keeps_only_prefix_and_last_two() -> None:
    assert mask("+447700900123") == "+44********23"
    assert mask("+1234567890") == "+12******90"
    assert mask("+123") == "+***"
