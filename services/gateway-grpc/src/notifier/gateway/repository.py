"""SQL on the tables the gateway writes: messages, their first history row, the outbox.

`MessageStore` accepts (one autocommitted statement inserts all three rows for a
whole batch of messages) and reads messages; `OutboxStore` stamps confirmed
publishes and lets the relay claim what was committed but never confirmed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2.errors

from notifier.common.db import Database
from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import TransientError
from notifier.gateway.model import AcceptCommand, Existing, Inserted, ListQuery, StoredMessage

# One statement writes a batch of messages, their QUEUED history rows and their
# outbox entries. Ids are drawn first, so each input row (by its ordinal) learns
# its id; a row whose idempotency key is taken is not inserted (ON CONFLICT), nor
# are its dependent rows, and comes back with a NULL id.
_INSERT = """
WITH input AS (
    SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id, r.*
      FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::jsonb[], $6::text[],
                  $7::text[], $8::text[], $9::bytea[])
           WITH ORDINALITY AS r(phone, template, parameters, content_sid, variables, order_id,
                                customer_id, key, hash, ord)
), message AS (
    INSERT INTO messages (id, phone_number, template_id, parameters, content_sid,
                          content_variables, order_id, customer_id, idempotency_key, request_hash)
    SELECT id, phone, template, parameters, content_sid, variables, order_id, customer_id,
           key, hash
      FROM input
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, created_at
), history AS (
    INSERT INTO message_status_history (message_id, status, occurred_at, source)
    SELECT id, 'QUEUED', created_at, 'gateway' FROM message
), entry AS (
    INSERT INTO outbox (message_id, created_at) SELECT id, created_at FROM message
)
SELECT message.id, message.created_at
  FROM input LEFT JOIN message USING (id)
 ORDER BY input.ord
"""
# Prepared once per connection: parsing and planning the statement above cost more
# than executing it for a small batch.
_PREPARED = "notifier_gateway_accept"
_PREPARE = f"""
PREPARE {_PREPARED} (text[], text[], jsonb[], text[], jsonb[], text[], text[], text[], bytea[])
    AS {_INSERT}"""
_EXECUTE = f"""
EXECUTE {_PREPARED} (%(phone)s::text[], %(template)s::text[], %(parameters)s::jsonb[],
    %(content_sid)s::text[], %(variables)s::jsonb[], %(order_id)s::text[],
    %(customer_id)s::text[], %(key)s::text[], %(hash)s::bytea[])"""
_BY_KEYS = "SELECT idempotency_key, id, request_hash FROM messages WHERE idempotency_key = ANY(%s)"
_COLUMNS = """id, phone_number, template_id, parameters, order_id, customer_id, status,
              twilio_sid, error_code, error_message, created_at, updated_at"""
_MARK_PUBLISHED = """
UPDATE outbox SET published_at = COALESCE(published_at, now()), publish_count = publish_count + 1
 WHERE message_id = ANY(%s)
"""
# SKIP LOCKED lets several gateway replicas relay at once, each taking other rows.
_CLAIM = """
SELECT m.id, m.phone_number, m.template_id, m.content_sid, m.content_variables, m.created_at
  FROM outbox o JOIN messages m ON m.id = o.message_id
 WHERE o.published_at IS NULL AND o.created_at < now() - make_interval(secs => %s)
 ORDER BY o.created_at, o.message_id
 LIMIT %s
   FOR UPDATE OF o SKIP LOCKED
"""


_INSERT_COLUMNS = (
    "phone", "template", "parameters", "content_sid", "variables",
    "order_id", "customer_id", "key", "hash",
)  # fmt: skip


def _insert_values(command: AcceptCommand) -> dict[str, Any]:
    return {
        "phone": command.phone_number,
        "template": command.template.name,
        "parameters": json.dumps(dict(command.parameters), ensure_ascii=False),
        "content_sid": command.template.content_sid,
        "variables": json.dumps(dict(command.content_variables), ensure_ascii=False),
        "order_id": command.order_id,
        "customer_id": command.customer_id,
        "key": command.idempotency_key,
        "hash": command.request_hash,
    }


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, command: AcceptCommand) -> Inserted | Existing:
        return self.insert_many([command])[0]

    def insert_many(self, commands: Sequence[AcceptCommand]) -> list[Inserted | Existing]:
        """Commits the messages with their history and outbox rows in one statement;
        a command whose idempotency key is taken gets the owner of the key instead."""
        columns: dict[str, list[Any]] = {name: [] for name in _INSERT_COLUMNS}
        for command in commands:
            for name, value in _insert_values(command).items():
                columns[name].append(value)
        with self._db.autocommit() as cur:
            try:
                cur.execute(_EXECUTE, columns)
            except psycopg2.errors.InvalidSqlStatementName:
                # A connection new to us: prepare the statement on it, once. In
                # autocommit mode the failed EXECUTE leaves nothing to roll back.
                cur.execute(_PREPARE)
                cur.execute(_EXECUTE, columns)
            rows = cur.fetchall()
        results: list[Inserted | Existing | None] = [
            Inserted(MessageId(row[0]), row[1]) if row[0] is not None else None for row in rows
        ]
        taken = [c.idempotency_key for c, r in zip(commands, results, strict=True) if r is None]
        if taken:
            # A new statement (and snapshot) sees each key's owner, even one committed
            # by a concurrent transaction while ours waited on the conflict.
            with self._db.autocommit() as cur:
                cur.execute(_BY_KEYS, (taken,))
                owners = {key: Existing(MessageId(i), bytes(h or b"")) for key, i, h in cur}
            for index, command in enumerate(commands):
                if results[index] is None:
                    owner = owners.get(command.idempotency_key)
                    if owner is None:
                        # Unreachable while messages are never deleted: a conflicting
                        # insert that aborts lets ours through instead.
                        raise TransientError("idempotency key conflict vanished; retry")
                    results[index] = owner
        return [r for r in results if r is not None]

    def get(self, message_id: MessageId) -> StoredMessage | None:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = %s", (message_id,))
            row = cur.fetchone()
        return None if row is None else _stored_message(row)

    def list(self, query: ListQuery) -> list[StoredMessage]:
        """Newest first; ties on created_at broken by id, so pages are stable."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("order_id", query.order_id),
            ("customer_id", query.customer_id),
            ("status", query.status.value if query.status else None),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {_COLUMNS} FROM messages {where} "
            "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
        )
        with self._db.autocommit() as cur:
            cur.execute(sql, (*args, query.limit, query.offset))
            rows = cur.fetchall()
        return [_stored_message(row) for row in rows]


@dataclass(frozen=True, slots=True)
class OutboxClaim:
    """Outbox rows locked by one relay pass, with the commands to publish again."""

    commands: Sequence[SendCommand]
    _cursor: Any

    def mark_published(self, ids: Sequence[MessageId]) -> None:
        if ids:
            self._cursor.execute(_MARK_PUBLISHED, (list(ids),))


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def mark_published(self, ids: Sequence[MessageId]) -> None:
        """Stamps the broker's confirmation on each id's outbox row."""
        if not ids:
            return
        with self._db.transaction() as cur:
            cur.execute(_MARK_PUBLISHED, (list(ids),))

    @contextmanager
    def claim_unpublished(self, older_than_seconds: float, limit: int) -> Iterator[OutboxClaim]:
        """Locks up to `limit` unconfirmed rows older than the age; commits on exit."""
        with self._db.transaction() as cur:
            cur.execute(_CLAIM, (older_than_seconds, limit))
            commands = [_send_command(row) for row in cur.fetchall()]
            yield OutboxClaim(commands, cur)


def _stored_message(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(
        message_id=MessageId(row[0]),
        phone_number=row[1],
        template_id=row[2],
        parameters={str(k): str(v) for k, v in (row[3] or {}).items()},
        order_id=row[4],
        customer_id=row[5],
        status=MessageStatus(row[6]),
        twilio_sid=row[7],
        error_code=row[8],
        error_message=row[9],
        created_at=row[10],
        updated_at=row[11],
    )


def _send_command(row: tuple[Any, ...]) -> SendCommand:
    message_id, phone, template_id, content_sid, variables, created_at = row
    return SendCommand(
        message_id=MessageId(message_id),
        to=phone,
        template_id=template_id,
        content_sid=content_sid,
        content_variables={str(k): str(v) for k, v in (variables or {}).items()},
        accepted_at=created_at,
    )
