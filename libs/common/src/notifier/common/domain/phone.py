"""Phone numbers: normalise to E.164 and mask for logs.

We check the form (a known country code and 7-15 digits), not that the number
exists: Twilio and WhatsApp tell us that (21211, 63024), and the original
service's example "+1234567890" must be accepted.
"""

from __future__ import annotations

import re

import phonenumbers

from notifier.common.errors import InvalidRequest

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALLOWED = re.compile(r"^\+[\d\s().-]+$")
MAX_INPUT_LENGTH = 32


def normalise_e164(raw: str, field: str = "phone_number") -> str:
    """Returns the number as E.164 (e.g. "+447700900123") or raises InvalidRequest."""
    text = raw.strip()
    if not text:
        raise InvalidRequest(field, "is required, in E.164 form like +447700900123")
    if len(text) > MAX_INPUT_LENGTH or not _ALLOWED.match(text):
        raise InvalidRequest(
            field, "must be in E.164 form: '+', country code and number, e.g. +447700900123"
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidRequest(field, f"is not a phone number in E.164 form ({exc})") from exc
    if (
        parsed.country_code is None
        or phonenumbers.region_code_for_country_code(parsed.country_code) == "ZZ"
    ):
        raise InvalidRequest(field, f"has an unknown country code +{parsed.country_code}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not _E164.match(e164):
        raise InvalidRequest(field, "must have 7 to 15 digits after the '+'")
    return e164


def mask(number: str) -> str:
    """`+447700900123` -> `+44********23`: enough to correlate, not to contact."""
    digits = number.lstrip("+")
    if len(digits) <= 4:
        return "+" + "*" * len(digits)
    return "+" + digits[:2] + "*" * (len(digits) - 4) + digits[-2:]
