"""What the gateway wrote, as the fuzz tests check it: row counts and the accepted ids.

A rejected request must leave no row and no record; an accepted one exactly one message
(with its history and outbox rows) and, eventually, one command on the topic.
"""

from __future__ import annotations

from typing import Any

import psycopg2

from notifier.common.pb import whatsapp_pb2
from notifier.common.pb.whatsapp_pb2_grpc import WhatsAppServiceStub
from tests.fuzz.grpc_calls import OK, Outcome
from tests.integration.gateway.gateway_support import TopicReader

_COUNTS = """SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_status_history),
                    (SELECT count(*) FROM outbox)"""


class Rows:
    """One autocommit connection kept open: a count per case costs well under a millisecond."""

    def __init__(self, database_url: str) -> None:
        self._conn = psycopg2.connect(database_url)
        self._conn.autocommit = True

    def counts(self) -> tuple[int, int, int]:
        """Rows in messages, message_status_history and outbox."""
        row = self._one(_COUNTS)
        return int(row[0]), int(row[1]), int(row[2])

    def exists(self, message_id: int) -> bool:
        return bool(self._one("SELECT count(*) FROM messages WHERE id = %s", message_id)[0] == 1)

    def ids(self) -> set[int]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT id FROM messages")
            return {int(row[0]) for row in cur.fetchall()}

    def close(self) -> None:
        self._conn.close()

    def _one(self, sql: str, *args: Any) -> tuple[Any, ...]:
        with self._conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        assert row is not None
        return tuple(row)


class Ledger:
    """The ids the gateway answered OK to a send with (duplicates excluded)."""

    def __init__(self) -> None:
        self.accepted: set[int] = set()

    def check_write(self, outcome: Outcome, before: tuple[int, int, int], rows: Rows) -> bool:
        """A new accepted message adds one row to each table, anything else none; True
        for a new accepted message, whose id is then on the ledger."""
        after = rows.counts()
        response = outcome.response
        if outcome.code == OK and not response.duplicate:
            assert after == tuple(n + 1 for n in before), (before, after)
            assert response.message_id not in self.accepted
            self.accepted.add(int(response.message_id))
            return True
        assert after == before, f"{outcome.code.name} changed the row counts {before} -> {after}"
        if outcome.code == OK:  # a duplicate answers the id of an accepted message
            assert response.message_id in self.accepted
        return False

    def assert_topic_holds_only_accepted(
        self, topic: TopicReader, rows: Rows, stub: WhatsAppServiceStub
    ) -> None:
        """Sends one good request and reads up to its record: the topic has one partition
        and one producer, so every earlier record (an accepted one or, by mistake, a
        rejected one) comes before it."""
        request = whatsapp_pb2.SendTemplateMessageRequest(
            phone_number="+447700900999",
            template_id="order_confirmation",
            parameters={"order_id": "SENTINEL"},
        )
        sentinel = int(stub.SendTemplateMessage(request, timeout=10).message_id)
        self.accepted.add(sentinel)
        topic.wait_for(sentinel, timeout=20)
        on_topic = set(topic.ids())
        assert on_topic == self.accepted, (
            f"{len(on_topic - self.accepted)} records of no accepted request, "
            f"{len(self.accepted - on_topic)} accepted requests without a record"
        )
        assert self.accepted <= rows.ids()
