"""PostgreSQL array literals for the set-based statements of the recorder's stores.

Arrays go to PostgreSQL as one literal each ('{1,2}', '{"a",NULL}'), which both sides
handle several times faster than psycopg2's ARRAY[...] of casts.
"""

from __future__ import annotations

from collections.abc import Iterable


def int_array(values: Iterable[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def bool_array(values: Iterable[bool]) -> str:
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


def text_array(values: Iterable[str | None]) -> str:
    items = list(values)
    if None not in items:
        plain: list[str] = items  # type: ignore[assignment]
        if not _needs_escaping("".join(plain)):
            # The common case (SIDs, statuses, timestamps): quote all at once.
            return '{"' + '","'.join(plain) + '"}' if plain else "{}"
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in items) + "}"


def _needs_escaping(text: str) -> bool:
    return "\\" in text or '"' in text or "\x00" in text


def _quoted(value: str) -> str:
    # PostgreSQL text cannot hold NUL: a value carrying one keeps the rest.
    escaped = value.replace("\x00", "").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
