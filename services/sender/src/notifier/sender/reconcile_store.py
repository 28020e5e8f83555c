"""The reconciler's side of PostgreSQL: who leads, and which messages went quiet. Read-only.

Leadership is a session-level advisory lock on a connection of its own: held while that
session lives, released by PostgreSQL when it ends (the process died, the server restarted,
the network broke). No table, no write. Candidates are read through the same session, so
a broken connection shows up as lost leadership on the next query.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg2

from notifier.common.db import Connection, connect, connection_lost
from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import TransientError
from notifier.sender.reconcile_plan import Candidate, Cursor

log = logging.getLogger(__name__)

# Any constant nothing else in the database locks ("nsendrec" in ASCII); the migrations
# use another one.
LOCK_KEY = 0x6E73656E64726563

_STALE = """
SELECT id, twilio_sid, status, updated_at FROM messages
WHERE status IN ('SENDING', 'SENT', 'DELIVERED') AND twilio_sid IS NOT NULL
  AND updated_at < now() - make_interval(secs => %(after)s)
  AND updated_at > now() - make_interval(secs => %(max_age)s)
  {after_cursor}
ORDER BY updated_at, id
LIMIT %(limit)s
"""
_AFTER_CURSOR = "AND (updated_at, id) > (%(cursor_at)s::timestamptz, %(cursor_id)s::bigint)"


class ReconcileStore:
    """`StaleMessages` over PostgreSQL; used by the reconciler's thread only."""

    def __init__(self, dsn: str, after_seconds: float, max_age_seconds: float) -> None:
        self._dsn = dsn
        self._after = after_seconds
        self._max_age = max_age_seconds
        self._conn: Connection | None = None
        self._leading = False

    def lead(self) -> bool:
        """True while this replica holds the lock; tries to take it when not. Raises
        TransientError when PostgreSQL cannot be reached."""
        if self._leading and self._conn is not None and not self._conn.closed:
            return True
        self._leading = False
        rows = self._query("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        self._leading = bool(rows[0][0])
        return self._leading

    def candidates(self, cursor: Cursor | None, limit: int) -> list[Candidate]:
        """Up to `limit` quiet messages after `cursor`, oldest change first."""
        params: dict[str, Any] = {"after": self._after, "max_age": self._max_age, "limit": limit}
        if cursor is not None:
            params["cursor_at"], params["cursor_id"] = cursor
        sql = _STALE.format(after_cursor=_AFTER_CURSOR if cursor is not None else "")
        return [
            Candidate(MessageId(row[0]), TwilioSid(row[1]), MessageStatus(row[2]), row[3])
            for row in self._query(sql, params)
        ]

    def resign(self) -> None:
        """Ends the session, and with it the lock."""
        self._leading = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _query(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn, "notifier-sender-reconciler")
            self._conn.autocommit = True  # never idle in a transaction while leading
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        except psycopg2.Error as exc:
            if not connection_lost(exc):
                raise
            was_leading = self._leading
            self.resign()
            if was_leading:
                log.warning("reconciler lost its database session (and leadership)")
            raise TransientError(f"PostgreSQL unavailable: {exc}".strip()) from exc
