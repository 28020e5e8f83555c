"""The recorder's array literals read back from PostgreSQL as the values they were made of."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.recorder.pg_arrays import bool_array, int_array, text_array

TEXTS = st.lists(st.one_of(st.none(), st.text(max_size=20)), max_size=12)
PLAIN_TEXTS = st.lists(st.text(alphabet="SMabc0123:+-. TZ", max_size=20), max_size=12)


@pytest.fixture(scope="module")
def cursor(database_url: str) -> Iterator[psycopg2.extensions.cursor]:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        yield cur
    conn.close()


def _read_back(cursor: psycopg2.extensions.cursor, literal: str, kind: str) -> list[object]:
    cursor.execute(f"SELECT %s::{kind}[]", (literal,))
    value: list[object] = cursor.fetchone()[0]
    return value


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.one_of(TEXTS, PLAIN_TEXTS))
def test_text_arrays_read_back_unchanged_but_for_nul(
    cursor: psycopg2.extensions.cursor, values: list[str | None]
) -> None:
    expected = [None if v is None else v.replace("\x00", "") for v in values]
    assert _read_back(cursor, text_array(values), "text") == expected


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=12))
def test_int_arrays_read_back_unchanged(
    cursor: psycopg2.extensions.cursor, values: list[int | None]
) -> None:
    assert _read_back(cursor, int_array(values), "bigint") == values


def test_bool_arrays_read_back_unchanged(cursor: psycopg2.extensions.cursor) -> None:
    assert _read_back(cursor, bool_array([True, False, True]), "boolean") == [True, False, True]
