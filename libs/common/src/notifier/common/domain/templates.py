"""Message templates: parameter validation and positional variables for Twilio.

One placeholder parser (`placeholders`) serves validation, rendering and the
operator's spec checks, so they cannot disagree about what a template needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from notifier.common.errors import InvalidRequest

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DEFAULT_MAX_LENGTH = 1024
# WhatsApp rejects template parameters with newlines, tabs or more than four
# consecutive spaces (error 132018), so we refuse them before anything is sent.
_BAD_WHITESPACE = re.compile(r"[\n\r\t]| {5,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class TemplateParameter:
    name: str
    required: bool = True
    max_length: int = DEFAULT_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    content_sid: str
    body: str
    parameters: tuple[TemplateParameter, ...]
    language: str = "en"
    category: str = "utility"
    enabled: bool = True


def placeholders(body: str) -> list[str]:
    """The named placeholders of a body, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(body):
        seen.setdefault(match.group(1), None)
    return list(seen)


def validate_params(template: Template, params: Mapping[str, str]) -> None:
    """Raises InvalidRequest naming the first parameter that is missing, unknown or bad."""
    declared = {p.name: p for p in template.parameters}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise InvalidRequest(
            f"parameters.{unknown[0]}",
            f"template {template.name!r} has no parameter {unknown[0]!r}; "
            f"it takes {', '.join(declared) or 'none'}",
        )
    missing = [p.name for p in template.parameters if p.required and p.name not in params]
    if missing:
        given = len(params)
        raise InvalidRequest(
            f"parameters.{missing[0]}",
            f"template {template.name!r} requires {', '.join(missing)} "
            f"(expects {len(declared)} parameters, got {given})",
        )
    for name, value in params.items():
        _check_value(f"parameters.{name}", value, declared[name].max_length)


def _check_value(field: str, value: str, max_length: int) -> None:
    if not value.strip():
        raise InvalidRequest(field, "must not be empty (WhatsApp rejects empty parameters)")
    if len(value) > max_length:
        raise InvalidRequest(field, f"is {len(value)} characters long; at most {max_length}")
    if _BAD_WHITESPACE.search(value):
        raise InvalidRequest(
            field, "must not contain newlines, tabs or more than four consecutive spaces"
        )
    if _CONTROL.search(value):
        raise InvalidRequest(field, "must not contain control characters")


def content_variables(template: Template, params: Mapping[str, str]) -> dict[str, str]:
    """Twilio ContentVariables: "1", "2", ... in the template's declared order.

    Optional parameters that were not given are left out, so Twilio uses the
    Content template's default for them.
    """
    return {
        str(position): params[p.name]
        for position, p in enumerate(template.parameters, start=1)
        if p.name in params
    }


def render(template: Template, params: Mapping[str, str]) -> str:
    """The body with each placeholder replaced by its value (empty when not given)."""
    return PLACEHOLDER.sub(lambda m: params.get(m.group(1), ""), template.body)
