"""A MessageTemplate spec -> the template row it stands for, or every problem to fix (pure).

Repeats the CRD schema's checks (a resource may predate the schema, and handlers must not trust
it) and adds what the schema cannot see: the body's placeholders against the declared parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from notifier.common.domain.templates import (
    DEFAULT_MAX_LENGTH,
    PARAMETER_NAME,
    PLACEHOLDER,
    Template,
    TemplateParameter,
    placeholders,
)

# The row the operator writes is common's Template: the gateway reads the same shape back.
TemplateRecord = Template

CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
# WhatsApp/Twilio language codes: "en", "en_US", "pt_BR", "zh_CN"; BCP-47's "en-US" too.
LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,2}$")
CATEGORIES = ("utility", "marketing", "authentication")
MAX_BODY_LENGTH = 1024  # WhatsApp's limit for a template body
MAX_PARAMETERS = 20
_NAME_HINT = "lowercase letters, digits and underscores, starting with a letter, at most 64"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A spec that cannot be stored; each problem names the field and what to fix."""

    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


def template_from_spec(spec: Mapping[str, object]) -> TemplateRecord | Rejected:
    """Checks every field and returns the record, or all the problems at once.

    The body's placeholders and the declared parameters must be the same set, optional ones
    included: the declared order maps parameters to Twilio's positional variables "1", "2", ...,
    so a declared parameter the body never uses means the body does not describe the Content
    template (and an undeclared placeholder could never be filled).
    """
    problems: list[str] = []
    template_id = _text(spec, "templateId", problems, PARAMETER_NAME, _NAME_HINT)
    content_sid = _text(spec, "contentSid", problems, CONTENT_SID, "HX then 32 hex digits")
    language = _text(spec, "language", problems, LANGUAGE, "e.g. en, en_US", default="en")
    category = _text(spec, "category", problems)
    if category and category not in CATEGORIES:
        problems.append(f"spec.category: {category!r} must be one of {', '.join(CATEGORIES)}")
    body = _text(spec, "body", problems)
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append("spec.enabled: must be true or false")
    parameters = _parameters(spec.get("parameters", []), problems)
    if body:
        problems.extend(_body_problems(body, parameters))
    if problems:
        return Rejected(tuple(problems))
    return TemplateRecord(
        name=template_id,
        content_sid=content_sid,
        body=body,
        parameters=parameters,
        language=language,
        category=category,
        enabled=bool(enabled),
    )


def _text(
    spec: Mapping[str, object],
    key: str,
    problems: list[str],
    pattern: re.Pattern[str] | None = None,
    hint: str = "",
    *,
    default: str | None = None,
) -> str:
    value = spec.get(key, default)
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(f"spec.{key}: is required")
        return ""
    if not isinstance(value, str):
        problems.append(f"spec.{key}: must be a string")
        return ""
    if pattern is not None and not pattern.match(value):
        problems.append(f"spec.{key}: {value!r} is not valid ({hint})")
        return ""
    if key == "body" and len(value) > MAX_BODY_LENGTH:
        problems.append(f"spec.body: is {len(value)} characters long; at most {MAX_BODY_LENGTH}")
        return ""
    return value


def _parameters(raw: object, problems: list[str]) -> tuple[TemplateParameter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        problems.append("spec.parameters: must be a list of {name, required, maxLength}")
        return ()
    if len(raw) > MAX_PARAMETERS:
        problems.append(f"spec.parameters: has {len(raw)} entries; at most {MAX_PARAMETERS}")
    parameters: list[TemplateParameter] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"spec.parameters[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be an object with a name")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            problems.append(f"{where}.name: {name!r} is not valid ({_NAME_HINT})")
            continue
        if name in seen:
            problems.append(f"{where}.name: {name!r} is declared twice")
            continue
        seen.add(name)
        required = item.get("required", True)
        max_length = item.get("maxLength", DEFAULT_MAX_LENGTH)
        if not isinstance(required, bool):
            problems.append(f"{where}.required: must be true or false")
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            problems.append(f"{where}.maxLength: must be an integer")
        elif not 1 <= max_length <= DEFAULT_MAX_LENGTH:
            problems.append(f"{where}.maxLength: {max_length} must be 1..{DEFAULT_MAX_LENGTH}")
        else:
            parameters.append(TemplateParameter(name, bool(required), max_length))
    return tuple(parameters)


def _body_problems(body: str, parameters: tuple[TemplateParameter, ...]) -> list[str]:
    used = placeholders(body)
    declared = [p.name for p in parameters]
    problems = [
        f"spec.body: uses {{{{{name}}}}} but spec.parameters does not declare {name!r}; "
        f"declare it or remove it from the body"
        for name in used
        if name not in declared
    ]
    problems += [
        f"spec.parameters: {name!r} is declared but the body has no {{{{{name}}}}}; "
        f"use it in the body or remove it"
        for name in declared
        if name not in used
    ]
    leftover = PLACEHOLDER.sub("", body)
    if "{{" in leftover or "}}" in leftover:
        problems.append(
            "spec.body: has a malformed placeholder; write {{name}} with a parameter name "
            "(letters, digits, underscores)"
        )
    return problems
