"""A connection that died under a statement is a transient error, never a bug report.

After a PostgreSQL crash, a pooled connection idle since can fail with a bare
DatabaseError ("server closed the connection unexpectedly", no SQLSTATE) rather than an
OperationalError; the chaos run saw it end a reconciler pass with a traceback. It must
surface as TransientError (callers retry; the gateway answers UNAVAILABLE, not INTERNAL)
and the connection must not go back into the pool.
"""

from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest

from notifier.common import db
from notifier.common.db import Database, connection_lost
from notifier.common.errors import TransientError
from tests.unit.common.db_fakes import LOST, FakeConnection


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[FakeConnection]:
    """Every connection the pool opens; the first fails with `made[0].error`."""
    made: list[FakeConnection] = []

    def connect(*_args: object, **_kwargs: object) -> FakeConnection:
        made.append(FakeConnection(psycopg2.DatabaseError(LOST) if not made else None))
        return made[-1]

    monkeypatch.setattr(db, "connect", connect)
    return made


@pytest.mark.parametrize("use", ["transaction", "autocommit"])
def test_a_bare_database_error_on_a_dead_connection_is_transient_and_the_connection_dropped(
    connections: list[FakeConnection], use: str
) -> None:
    pool = Database("postgresql://nowhere/x", "test")
    with pytest.raises(TransientError, match=LOST), getattr(pool, use)() as cur:
        cur.execute("SELECT 1")
    assert connections[0].closed and not connections[0].rolled_back
    with getattr(pool, use)() as cur:  # a new connection, not the dead one
        cur.execute("SELECT 1")
    assert len(connections) == 2


def test_errors_the_server_reports_or_the_client_makes_are_not_connection_losses() -> None:
    assert connection_lost(psycopg2.OperationalError(LOST))
    assert connection_lost(psycopg2.InterfaceError("connection already closed"))
    assert connection_lost(psycopg2.DatabaseError(LOST))
    assert not connection_lost(psycopg2.ProgrammingError("can't adapt type 'object'"))
    assert not connection_lost(psycopg2.errors.UniqueViolation("duplicate key"))
    assert not connection_lost(ValueError("not a database error"))
