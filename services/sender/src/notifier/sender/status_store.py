"""Reads what the sender checks before calling Twilio: the message's status and whether
its recipient is opted out now. Read-only: the recorder owns every write to both tables.
"""

from __future__ import annotations

from notifier.common.db import Database
from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus
from notifier.sender.service import MessageState

# One round trip: a redelivered command is not sent twice (status), and an opt-out
# recorded while the message waited in the queue stops it (opt_outs).
_STATE = """
SELECT m.status, o.keyword
FROM messages AS m
LEFT JOIN opt_outs AS o ON o.phone_number = m.phone_number AND o.opted_out
WHERE m.id = %s
"""


class MessageStatusStore:
    """`StatusReader` over the messages and opt_outs tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def state_of(self, message_id: MessageId) -> MessageState | None:
        """None when there is no such message; TransientError when PostgreSQL is down."""
        with self._db.transaction() as cur:
            cur.execute(_STATE, (message_id,))
            row = cur.fetchone()
        if row is None:
            return None
        return MessageState(MessageStatus(row[0]), opted_out_by=row[1])
