"""PostgreSQL connections: a small thread-safe pool and a transaction helper.

Owns connection set-up (keepalives, application name, statement timeout) and
recovery from broken connections. SQL for a table lives with its owner
(gateway repository, recorder store), not here.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.pool

from notifier.common.errors import TransientError

log = logging.getLogger(__name__)

Connection = psycopg2.extensions.connection

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")
_PASSWORD_KV = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """Returns the DSN without its password, fit for logs and error messages."""
    return _PASSWORD_KV.sub(r"\1***", _PASSWORD.sub(r"\1***@", dsn))


def connection_lost(exc: BaseException) -> bool:
    """Whether a psycopg2 error means the connection is gone (server restarted, network),
    not that the statement was wrong: such an error is transient and the connection useless.

    Besides OperationalError and InterfaceError, libpq's "server closed the connection
    unexpectedly" can surface as a bare DatabaseError without an SQLSTATE (seen after a
    PostgreSQL crash, on a connection idle since); errors the server reports always carry
    one, and psycopg2's own client-side errors are subclasses.
    """
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    return type(exc) is psycopg2.DatabaseError and exc.pgcode is None


def connect(dsn: str, application_name: str, statement_timeout_ms: int = 30_000) -> Connection:
    """Opens one connection with TCP keepalives, so a dead server is noticed."""
    try:
        conn: Connection = psycopg2.connect(
            dsn,
            application_name=application_name,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            options=f"-c statement_timeout={statement_timeout_ms}",
        )
    except psycopg2.OperationalError as exc:
        raise TransientError(f"cannot connect to PostgreSQL at {redact_dsn(dsn)}: {exc}") from exc
    return conn


class Database:
    """A bounded pool of connections; `transaction()` is the only way to use one.

    A connection that broke (server restart, network) is discarded rather than
    returned, and the error surfaces as TransientError so callers can retry.
    """

    def __init__(self, dsn: str, application_name: str, max_connections: int = 10) -> None:
        self._dsn = dsn
        self._application_name = application_name
        self._idle: list[Connection] = []
        self._busy: set[Connection] = set()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def dsn_for_logs(self) -> str:
        return redact_dsn(self._dsn)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Yields a cursor inside a transaction: commit on success, rollback on error."""
        with self._slots:
            conn = self._checkout()
            broken = False
            try:
                with conn.cursor() as cur:
                    yield cur
                conn.commit()
            except BaseException as exc:
                broken = connection_lost(exc) or conn.closed != 0
                if not broken:
                    conn.rollback()
                if connection_lost(exc):
                    raise TransientError(f"PostgreSQL unavailable: {exc}".strip()) from exc
                raise
            finally:
                self._checkin(conn, broken)

    @contextmanager
    def autocommit(self) -> Iterator[Any]:
        """Yields a cursor on which every statement commits on its own.

        One round trip per statement instead of BEGIN, statement, COMMIT: for hot
        single-statement reads and writes (a statement whose CTEs insert into
        several tables is still atomic).
        """
        with self._slots:
            conn = self._checkout()
            broken = False
            conn.autocommit = True
            try:
                with conn.cursor() as cur:
                    yield cur
            except BaseException as exc:
                broken = connection_lost(exc) or conn.closed != 0
                if connection_lost(exc):
                    raise TransientError(f"PostgreSQL unavailable: {exc}".strip()) from exc
                raise
            finally:
                if not broken and not conn.closed:
                    conn.autocommit = False
                self._checkin(conn, broken)

    def _checkout(self) -> Connection:
        with self._lock:
            if self._closed:
                raise TransientError("database pool is closed")
            if self._idle:
                conn = self._idle.pop()
                self._busy.add(conn)
                return conn
        conn = connect(self._dsn, self._application_name)
        with self._lock:
            self._busy.add(conn)
        return conn

    def _checkin(self, conn: Connection, broken: bool) -> None:
        with self._lock:
            self._busy.discard(conn)
        if broken or conn.closed:
            conn.close()
            return
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    def abort(self) -> int:
        """Closes the pool and cancels every statement still running (a shutdown whose
        grace ran out while PostgreSQL hangs); their transactions roll back. Returns how
        many were cancelled."""
        with self._lock:
            busy = list(self._busy)
        self.close()
        cancelled = 0
        for conn in busy:
            try:
                conn.cancel()
                cancelled += 1
            except psycopg2.Error as exc:
                log.warning("cannot cancel a statement", extra={"error": str(exc)})
        return cancelled

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
