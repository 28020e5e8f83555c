"""Reads a message's status from PostgreSQL, so a redelivered command is not sent twice.

Read-only: the recorder owns every write to `messages`.
"""

from __future__ import annotations

from notifier.common.db import Database
from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus


class MessageStatusStore:
    """`StatusReader` over the messages table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def status_of(self, message_id: MessageId) -> MessageStatus | None:
        """None when there is no such message; TransientError when PostgreSQL is down."""
        with self._db.transaction() as cur:
            cur.execute("SELECT status FROM messages WHERE id = %s", (message_id,))
            row = cur.fetchone()
        return None if row is None else MessageStatus(row[0])
