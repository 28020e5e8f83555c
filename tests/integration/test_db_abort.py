"""Database.abort: a statement stuck behind a lock is cancelled and rolled back at once, and
the pool takes no more work (what a shutdown does when its grace ran out)."""

from __future__ import annotations

import threading

import psycopg2
import pytest

from notifier.common.db import Database
from notifier.common.errors import TransientError
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration


def test_abort_cancels_a_blocked_statement_and_closes_the_pool(database_url: str) -> None:
    table = f"abort_{random_suffix()}"
    holder = psycopg2.connect(database_url)
    try:
        with holder.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (n int)")
        holder.commit()
        with holder.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # held, not committed
        db = Database(database_url, "abort-test", max_connections=2)
        errors: list[BaseException] = []

        def insert() -> None:
            try:
                with db.transaction() as cur:
                    cur.execute(f"INSERT INTO {table} VALUES (1)")
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=insert)
        worker.start()
        wait_until(lambda: _waiting(database_url, "abort-test"),
                   message="the insert to wait on the lock")  # fmt: skip

        assert db.abort() == 1
        worker.join(timeout=5)
        assert not worker.is_alive(), "the cancelled statement did not return"
        assert len(errors) == 1 and isinstance(errors[0], TransientError)
        with pytest.raises(TransientError, match="closed"), db.transaction():
            pass
        holder.rollback()
        with holder.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone() == (0,), "the cancelled insert was rolled back"
            cur.execute(f"DROP TABLE {table}")
        holder.commit()
    finally:
        holder.close()


def _waiting(database_url: str, application: str) -> bool:
    # A connection of its own, autocommit: pg_stat_activity is a snapshot kept until the
    # end of the transaction that first read it.
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock'",
                (application,),
            )
            row = cur.fetchone()
    finally:
        conn.close()
    return bool(row and row[0])
