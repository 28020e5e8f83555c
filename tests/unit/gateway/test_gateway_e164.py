"""The gateway's E.164 fast path gives exactly what the full phonenumbers parse gives."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from notifier.common.domain.phone import normalise_e164
from notifier.common.errors import InvalidRequest
from notifier.gateway.e164 import normalise_phone

COUNTRY_CODES = sorted(COUNTRY_CODE_TO_REGION_CODE)
# National numbers that start like a national or carrier prefix somewhere (0, 1, 00,
# 15, 180020, ...), so the paths that may strip one are exercised for every country.
NATIONAL_STARTS = ("", "0", "00", "1", "11", "15", "8", "9", "180020", "06", "7")


def outcome(normalise: object, raw: str) -> tuple[str, str]:
    """("ok", number) or ("error", field + message): what a caller would see."""
    assert callable(normalise)
    try:
        return "ok", normalise(raw)
    except InvalidRequest as exc:
        return "error", f"{exc.field}: {exc}"


def assert_same(raw: str) -> None:
    assert outcome(normalise_phone, raw) == outcome(normalise_e164, raw), raw


@st.composite
def country_numbers(draw: st.DrawFn) -> str:
    code = draw(st.sampled_from(COUNTRY_CODES))
    start = draw(st.sampled_from(NATIONAL_STARTS))
    rest = draw(st.text(alphabet="0123456789", min_size=0, max_size=14))
    return f"+{code}{start}{rest}"[: draw(st.integers(min_value=2, max_value=18))]


@settings(max_examples=3000)
@given(country_numbers())
@example("+4407700900123")  # UK with its trunk 0: parsing strips it
@example("+11234567890")  # NANP national number starting with the prefix 1
@example("+390612345678")  # Italy keeps its leading zero
@example("+80012345678")  # a non-geographic code
@example("+999123456789")  # no such country code
def test_numbers_after_a_country_code_match_the_full_parse(raw: str) -> None:
    assert_same(raw)


@settings(max_examples=2000)
@given(st.text(alphabet="+0123456789", min_size=0, max_size=20))
def test_digit_strings_match_the_full_parse(raw: str) -> None:
    assert_same(raw)


@settings(max_examples=1000)
@given(st.text(alphabet="+0123456789 ()-.\t\n", min_size=0, max_size=24) | st.text(max_size=24))
def test_formatted_and_arbitrary_text_match_the_full_parse(raw: str) -> None:
    assert_same(raw)


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_country_code_matches_the_full_parse(code: int) -> None:
    for start in NATIONAL_STARTS:
        for length in range(4, 13):
            national = (start + "123456789012")[:length]
            assert_same(f"+{code}{national}")


def test_the_field_name_is_passed_through() -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_phone("12345", field="to")
    assert caught.value.field == "to"
