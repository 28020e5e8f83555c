"""The reconciler's session: a connection that died (even as a bare DatabaseError without an
SQLSTATE, as after a PostgreSQL crash) is a lost lead and a skipped pass, not a traceback."""

from __future__ import annotations

import psycopg2
import pytest

from notifier.common.errors import TransientError
from notifier.sender import reconcile_store
from notifier.sender.reconcile_store import ReconcileStore
from tests.unit.common.db_fakes import LOST, FakeConnection


def test_a_dead_session_resigns_and_reads_as_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeConnection] = []

    def connect(*_args: object, **_kwargs: object) -> FakeConnection:
        made.append(FakeConnection(psycopg2.DatabaseError(LOST)))
        return made[-1]

    monkeypatch.setattr(reconcile_store, "connect", connect)
    store = ReconcileStore("postgresql://nowhere/x", after_seconds=5, max_age_seconds=3600)
    with pytest.raises(TransientError, match=LOST):
        store.lead()
    assert made[0].closed  # resigned: the next pass opens a new session
    with pytest.raises(TransientError):
        store.lead()
    assert len(made) == 2


def test_a_wrong_statement_is_not_mistaken_for_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        reconcile_store,
        "connect",
        lambda *_a, **_k: FakeConnection(psycopg2.ProgrammingError("syntax error")),
    )
    with pytest.raises(psycopg2.ProgrammingError):
        ReconcileStore("postgresql://nowhere/x", 5, 3600).lead()
