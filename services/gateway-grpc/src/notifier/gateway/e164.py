"""A fast path for recipients already in canonical E.164 (what callers nearly always send).

`normalise_phone` returns exactly what `normalise_e164` returns, for every input: a
canonical number comes back unchanged from phonenumbers' parse-and-format unless its
country code is unknown (an error) or the national number could start with the
region's national prefix (`+44 0...`, `+1 1...`, which parsing may strip). Only
numbers clear of both skip the full parse; everything else takes it.
"""

from __future__ import annotations

import re

import phonenumbers

from notifier.common.domain.phone import normalise_e164

# ASCII digits only: other digits (which \d would match) take the full parse.
_CANONICAL = re.compile(r"\+[1-9][0-9]{6,14}")
# Country calling code -> its national prefix pattern (None: no prefix to strip);
# filled on first use, so only the metadata of codes actually seen is loaded.
_NATIONAL_PREFIX: dict[int, re.Pattern[str] | None] = {}


def normalise_phone(raw: str, field: str = "phone_number") -> str:
    """`normalise_e164(raw, field)`, without the full parse when `raw` is canonical."""
    if _CANONICAL.fullmatch(raw) and _parses_to_itself(raw):
        return raw
    return normalise_e164(raw, field)


def _parses_to_itself(number: str) -> bool:
    digits = number[1:]
    # As phonenumbers does: the shortest prefix that is a known code (codes are prefix-free).
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            prefix = _national_prefix(code)
            return prefix is None or prefix.match(digits[length:]) is None
    return False


def _national_prefix(code: int) -> re.Pattern[str] | None:
    try:
        return _NATIONAL_PREFIX[code]
    except KeyError:
        pass
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    compiled: re.Pattern[str] | None = None
    if metadata is None:
        compiled = re.compile("")  # matches anything: always the full parse
    elif metadata.national_prefix_for_parsing:
        # Compiled and matched as phonenumbers does (re.compile, then .match).
        compiled = re.compile(metadata.national_prefix_for_parsing)
    _NATIONAL_PREFIX[code] = compiled
    return compiled
