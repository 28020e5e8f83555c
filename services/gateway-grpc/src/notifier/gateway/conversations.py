"""SQL reads of what happened around the gateway's messages: history, replies, opt-outs.

Read-only: the recorder writes message_status_history, inbound_messages and opt_outs.
Each function takes a cursor, so `MessageStore` decides how a read uses the pool.
"""

from __future__ import annotations

from typing import Any

from notifier.common.domain.ids import MessageId
from notifier.common.domain.status import MessageStatus
from notifier.gateway.model import (
    Existing,
    HistoryEntry,
    InboundReply,
    MessageStatusChange,
    OrderRecords,
    RecipientState,
    StoredMessage,
)

# One round trip, three index probes: the opt-out (primary key), the latest inbound
# message (inbound_messages_phone_idx gives max() from its first entry) and the owner
# of the idempotency key (its unique index; none when the key is NULL).
_RECIPIENT_STATE = """
SELECT EXISTS (SELECT FROM opt_outs WHERE phone_number = %(phone)s AND opted_out),
       (SELECT max(received_at) FROM inbound_messages WHERE phone_number = %(phone)s),
       owner.id, owner.request_hash
  FROM (SELECT 1) AS one
  LEFT JOIN messages AS owner ON owner.idempotency_key = %(key)s
"""
# The columns every messages read returns, in this order (see `stored_message`).
MESSAGE_COLUMNS = """m.id, m.phone_number, m.template_id, m.parameters, m.order_id,
    m.customer_id, m.status, m.twilio_sid, m.error_code, m.error_message, m.created_at,
    m.updated_at, m.body"""
_HISTORY_COLUMNS = "h.status, h.occurred_at, h.source, h.error_code, h.error_message"
# A message and its history in one statement (one snapshot); at most seven rows.
_MESSAGE_WITH_HISTORY = f"""
SELECT {MESSAGE_COLUMNS}, {_HISTORY_COLUMNS}
  FROM messages AS m LEFT JOIN message_status_history AS h ON h.message_id = m.id
 WHERE m.id = %s
 ORDER BY h.occurred_at, message_status_rank(h.status)
"""
# An order's messages and replies, oldest first (messages_order_idx read backwards,
# inbound_messages_order_idx), each cut at the limit; the history of those messages only.
_ORDER_MESSAGES = f"""
SELECT {MESSAGE_COLUMNS} FROM messages AS m
 WHERE m.order_id = %s ORDER BY m.created_at, m.id LIMIT %s
"""
_ORDER_CHANGES = f"""
SELECT h.message_id, {_HISTORY_COLUMNS} FROM message_status_history AS h
 WHERE h.message_id = ANY(%s) AND h.status <> 'QUEUED'
"""
_ORDER_REPLIES = """
SELECT id, phone_number, body, profile_name, button_payload, num_media, twilio_sid, received_at
  FROM inbound_messages
 WHERE order_id = %s ORDER BY received_at, id LIMIT %s
"""


def recipient_state(cur: Any, phone_number: str, idempotency_key: str | None) -> RecipientState:
    cur.execute(_RECIPIENT_STATE, {"phone": phone_number, "key": idempotency_key})
    opted_out, last_inbound_at, owner_id, owner_hash = cur.fetchone()
    owner = None if owner_id is None else Existing(MessageId(owner_id), bytes(owner_hash or b""))
    return RecipientState(bool(opted_out), last_inbound_at, owner)


def message_with_history(cur: Any, message_id: MessageId) -> StoredMessage | None:
    cur.execute(_MESSAGE_WITH_HISTORY, (message_id,))
    rows = cur.fetchall()
    if not rows:
        return None
    history = tuple(_history_entry(row[13:]) for row in rows if row[13] is not None)
    return stored_message(rows[0], history)


def order_records(cur: Any, order_id: str, limit: int) -> OrderRecords:
    """At most `limit` messages and `limit` replies of the order, oldest first, and every
    status change but QUEUED of those messages. Run inside one REPEATABLE READ
    transaction, the three reads see one snapshot."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    cur.execute(_ORDER_MESSAGES, (order_id, limit))
    messages = tuple(stored_message(row) for row in cur.fetchall())
    changes: tuple[MessageStatusChange, ...] = ()
    if messages:
        cur.execute(_ORDER_CHANGES, ([m.message_id for m in messages],))
        changes = tuple(
            MessageStatusChange(MessageId(row[0]), _history_entry(row[1:]))
            for row in cur.fetchall()
        )
    cur.execute(_ORDER_REPLIES, (order_id, limit))
    replies = tuple(_inbound_reply(row) for row in cur.fetchall())
    return OrderRecords(messages, changes, replies)


def stored_message(row: tuple[Any, ...], history: tuple[HistoryEntry, ...] = ()) -> StoredMessage:
    """A row of MESSAGE_COLUMNS (further columns are ignored)."""
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
        body=row[12],
        history=history,
    )


def _history_entry(row: tuple[Any, ...]) -> HistoryEntry:
    status, occurred_at, source, error_code, error_message = row
    return HistoryEntry(MessageStatus(status), occurred_at, source, error_code, error_message)


def _inbound_reply(row: tuple[Any, ...]) -> InboundReply:
    inbound_id, phone, body, profile_name, button_payload, num_media, sid, received_at = row
    return InboundReply(
        inbound_id=int(inbound_id),
        phone_number=phone,
        body=body,
        profile_name=profile_name,
        button_payload=button_payload,
        num_media=int(num_media),
        twilio_sid=sid,
        received_at=received_at,
    )
