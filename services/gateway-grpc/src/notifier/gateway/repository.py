"""SQL on the tables the gateway writes: messages, their first history row, the outbox.

`MessageStore` accepts (one autocommitted statement inserts all three rows for a
whole batch of messages, template or session, unless the recipient opted out) and
reads messages, their history, an order's records and a recipient's state (the SQL
of those reads is in `conversations`); `OutboxStore` stamps confirmed publishes and
lets the relay claim what was committed but never confirmed.
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
from notifier.common.errors import TransientError
from notifier.gateway.conversations import (
    MESSAGE_COLUMNS,
    message_with_history,
    order_records,
    recipient_state,
    stored_message,
)
from notifier.gateway.model import (
    Accept,
    AcceptCommand,
    AcceptOutcome,
    Existing,
    Inserted,
    ListQuery,
    OptedOut,
    OrderRecords,
    RecipientState,
    StoredMessage,
)

# One statement writes a batch of messages, their QUEUED history rows and their
# outbox entries. Ids are drawn first, so each input row (by its ordinal) learns
# its id; a row whose idempotency key is taken is not inserted (ON CONFLICT), nor
# are its dependent rows, and comes back with a NULL id. So does a row whose
# recipient is opted out (STOP), flagged: the opt-out check costs one primary-key
# probe per row inside this statement, not a round trip of its own. A session
# message has a body and neither template nor content SID (messages_kind_check).
_INSERT = """
WITH input AS (
    SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id, r.*,
           EXISTS (SELECT FROM opt_outs AS o WHERE o.phone_number = r.phone AND o.opted_out)
               AS opted_out
      FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::jsonb[], $6::text[],
                  $7::text[], $8::text[], $9::bytea[], $10::text[])
           WITH ORDINALITY AS r(phone, template, parameters, content_sid, variables, order_id,
                                customer_id, key, hash, body, ord)
), message AS (
    INSERT INTO messages (id, phone_number, template_id, parameters, content_sid,
                          content_variables, order_id, customer_id, idempotency_key, request_hash,
                          body)
    SELECT id, phone, template, parameters, content_sid, variables, order_id, customer_id,
           key, hash, body
      FROM input
     WHERE NOT opted_out
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, created_at
), history AS (
    INSERT INTO message_status_history (message_id, status, occurred_at, source)
    SELECT id, 'QUEUED', created_at, 'gateway' FROM message
), entry AS (
    INSERT INTO outbox (message_id, created_at) SELECT id, created_at FROM message
)
SELECT message.id, message.created_at, input.opted_out
  FROM input LEFT JOIN message USING (id)
 ORDER BY input.ord
"""
# Prepared once per connection: parsing and planning the statement above cost more
# than executing it for a small batch.
_PREPARED = "notifier_gateway_accept"
_PREPARE = f"""
PREPARE {_PREPARED} (text[], text[], jsonb[], text[], jsonb[], text[], text[], text[], bytea[],
                     text[])
    AS {_INSERT}"""
_EXECUTE = f"""
EXECUTE {_PREPARED} (%(phone)s::text[], %(template)s::text[], %(parameters)s::jsonb[],
    %(content_sid)s::text[], %(variables)s::jsonb[], %(order_id)s::text[],
    %(customer_id)s::text[], %(key)s::text[], %(hash)s::bytea[], %(body)s::text[])"""
_BY_KEYS = "SELECT idempotency_key, id, request_hash FROM messages WHERE idempotency_key = ANY(%s)"
_MARK_PUBLISHED = """
UPDATE outbox SET published_at = COALESCE(published_at, now()), publish_count = publish_count + 1
 WHERE message_id = ANY(%s)
"""
# SKIP LOCKED lets several gateway replicas relay at once, each taking other rows.
_CLAIM = """
SELECT m.id, m.phone_number, m.template_id, m.content_sid, m.content_variables, m.created_at,
       m.body
  FROM outbox o JOIN messages m ON m.id = o.message_id
 WHERE o.published_at IS NULL AND o.created_at < now() - make_interval(secs => %s)
 ORDER BY o.created_at, o.message_id
 LIMIT %s
   FOR UPDATE OF o SKIP LOCKED
"""


_INSERT_COLUMNS = (
    "phone", "template", "parameters", "content_sid", "variables",
    "order_id", "customer_id", "key", "hash", "body",
)  # fmt: skip


def _insert_values(command: Accept) -> dict[str, Any]:
    values: dict[str, Any] = {
        "phone": command.phone_number,
        "template": None,
        "parameters": "{}",
        "content_sid": None,
        "variables": "{}",
        "order_id": command.order_id,
        "customer_id": command.customer_id,
        "key": command.idempotency_key,
        "hash": command.request_hash,
        "body": None,
    }
    if isinstance(command, AcceptCommand):
        values["template"] = command.template.name
        values["parameters"] = json.dumps(dict(command.parameters), ensure_ascii=False)
        values["content_sid"] = command.template.content_sid
        values["variables"] = json.dumps(dict(command.content_variables), ensure_ascii=False)
    else:
        values["body"] = command.body
    return values


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, command: Accept) -> AcceptOutcome:
        return self.insert_many([command])[0]

    def insert_many(self, commands: Sequence[Accept]) -> list[AcceptOutcome]:
        """Commits the messages with their history and outbox rows in one statement;
        a command whose idempotency key is taken gets the owner of the key instead,
        and one to an opted-out recipient gets OptedOut (unless its key is taken:
        a retry of a request accepted before the STOP is answered with its id)."""
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
        results: list[AcceptOutcome | None] = [
            Inserted(MessageId(row[0]), row[1]) if row[0] is not None else None for row in rows
        ]
        opted_out = [bool(row[2]) for row in rows]
        for index, command in enumerate(commands):
            if opted_out[index] and command.idempotency_key is None:
                results[index] = OptedOut()
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
                    if owner is None and opted_out[index]:
                        results[index] = OptedOut()
                        continue
                    if owner is None:
                        # Unreachable while messages are never deleted: a conflicting
                        # insert that aborts lets ours through instead.
                        raise TransientError("idempotency key conflict vanished; retry")
                    results[index] = owner
        return [r for r in results if r is not None]

    def get(self, message_id: MessageId) -> StoredMessage | None:
        """The message with its status history, oldest first."""
        with self._db.autocommit() as cur:
            return message_with_history(cur, message_id)

    def recipient_state(self, phone_number: str, idempotency_key: str | None) -> RecipientState:
        """Opt-out, latest inbound message and the key's owner, in one query."""
        with self._db.autocommit() as cur:
            return recipient_state(cur, phone_number, idempotency_key)

    def order_records(self, order_id: str, limit: int) -> OrderRecords:
        with self._db.transaction() as cur:
            return order_records(cur, order_id, limit)

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
            f"SELECT {MESSAGE_COLUMNS} FROM messages AS m {where} "
            "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
        )
        with self._db.autocommit() as cur:
            cur.execute(sql, (*args, query.limit, query.offset))
            rows = cur.fetchall()
        return [stored_message(row) for row in rows]


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

    def requeue_queued(self) -> int:
        """Marks every message still QUEUED as not published, so the relay sends its
        command again; for when the outbound topic was lost (the broker lost its data).
        Returns how many. Messages that got further are not touched: their command was
        consumed, and the sender would skip it anyway."""
        with self._db.transaction() as cur:
            cur.execute(_REQUEUE_QUEUED)
            return int(cur.rowcount)

    @contextmanager
    def claim_unpublished(self, older_than_seconds: float, limit: int) -> Iterator[OutboxClaim]:
        """Locks up to `limit` unconfirmed rows older than the age; commits on exit."""
        with self._db.transaction() as cur:
            cur.execute(_CLAIM, (older_than_seconds, limit))
            commands = [_send_command(row) for row in cur.fetchall()]
            yield OutboxClaim(commands, cur)


_REQUEUE_QUEUED = """
UPDATE outbox AS o SET published_at = NULL
  FROM messages AS m
 WHERE m.id = o.message_id AND m.status = 'QUEUED' AND o.published_at IS NOT NULL
"""


def _send_command(row: tuple[Any, ...]) -> SendCommand:
    """The command an accept published, rebuilt from its row: a template (content SID
    and variables) or a session message (body, no template)."""
    message_id, phone, template_id, content_sid, variables, created_at, body = row
    return SendCommand(
        message_id=MessageId(message_id),
        to=phone,
        template_id=template_id or "",
        content_sid=content_sid,
        content_variables={str(k): str(v) for k, v in (variables or {}).items()},
        accepted_at=created_at,
        body=body,
    )
