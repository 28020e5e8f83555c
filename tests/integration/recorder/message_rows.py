"""Messages inserted straight into the test database (as the gateway would), inbound
messages as the webhook would publish them, and what the recorder made of both."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import InboundMessage, Source, StatusChange
from notifier.common.domain.status import MessageStatus

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Row:
    status: MessageStatus
    twilio_sid: str | None
    error_code: int | None
    error_message: str | None


def new_sid() -> TwilioSid:
    return TwilioSid("SM" + secrets.token_hex(16))


def new_number() -> str:
    """A fresh E.164 number, so tests sharing a database never share a customer."""
    return "+4477" + "".join(secrets.choice("0123456789") for _ in range(9))


def inbound(
    phone: str,
    body: str = "Where is my parcel?",
    *,
    at: float = 0,
    sid: str | None = None,
    opt_out_type: str | None = None,
    **fields: object,
) -> InboundMessage:
    return InboundMessage(
        twilio_sid=TwilioSid(sid) if sid else new_sid(),
        from_number=phone,
        to_number="+14155238886",
        received_at=T0 + timedelta(seconds=at),
        body=body,
        opt_out_type=opt_out_type,
        **fields,  # type: ignore[arg-type]
    )


def event(
    message_id: int | None,
    status: MessageStatus,
    *,
    sid: str | None = None,
    at: float = 0,
    source: Source = Source.TWILIO,
    code: int | None = None,
    text: str | None = None,
) -> StatusChange:
    return StatusChange(
        message_id=MessageId(message_id) if message_id is not None else None,
        twilio_sid=TwilioSid(sid) if sid else None,
        status=status,
        occurred_at=T0 + timedelta(seconds=at),
        source=source,
        error_code=code,
        error_message=text,
    )


class Messages:
    """Inserts QUEUED messages the way the gateway does and reads their state back."""

    def __init__(self, url: str) -> None:
        self._url = url

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        return self._query(sql, params)

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(self._url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create(self, count: int = 1) -> list[int]:
        rows = self._query(
            "INSERT INTO messages (phone_number, template_id, content_sid, parameters) "
            "SELECT '+447700900123', name, content_sid, '{\"order_id\": \"A-1\"}' "
            "FROM templates, generate_series(1, %s) WHERE name = 'order_confirmation' "
            "RETURNING id",
            (count,),
        )
        return sorted(int(str(r[0])) for r in rows)

    def create_to(
        self,
        phone: str,
        *,
        order_id: str | None = None,
        customer_id: str | None = None,
        ago: float = 0,
        body: str | None = None,
    ) -> int:
        """One message to `phone` created `ago` seconds before now: a template message,
        or a session message when `body` is given."""
        [(message_id,)] = self._query(
            "INSERT INTO messages (phone_number, template_id, content_sid, body, order_id,"
            " customer_id, created_at)"
            " SELECT %s, CASE WHEN %s IS NULL THEN name END,"
            " CASE WHEN %s IS NULL THEN content_sid END, %s, %s, %s,"
            " now() - make_interval(secs => %s)"
            " FROM templates WHERE name = 'order_confirmation' RETURNING id",
            (phone, body, body, body, order_id, customer_id, ago),
        )
        return int(message_id)

    def inbound_rows(self, phone: str) -> list[dict[str, Any]]:
        """The number's inbound messages as stored, oldest first."""
        conn = psycopg2.connect(self._url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT * FROM inbound_messages WHERE phone_number = %s"
                    " ORDER BY received_at, id",
                    (phone,),
                )
                names = [d[0] for d in cur.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()

    def opt_out(self, phone: str) -> tuple[bool, str] | None:
        """(opted_out, keyword) of the number, None when it never sent a keyword."""
        rows = self._query(
            "SELECT opted_out, keyword FROM opt_outs WHERE phone_number = %s", (phone,)
        )
        return (bool(rows[0][0]), str(rows[0][1])) if rows else None

    def row(self, message_id: int) -> Row:
        return self.rows([message_id])[message_id]

    def rows(self, ids: Sequence[int]) -> dict[int, Row]:
        found = self._query(
            "SELECT id, status, twilio_sid, error_code, error_message FROM messages "
            "WHERE id = ANY(%s)",
            (list(ids),),
        )
        return {
            int(str(i)): Row(MessageStatus(str(s)), sid, code, text)  # type: ignore[arg-type]
            for i, s, sid, code, text in found
        }

    def history(self, message_id: int) -> dict[MessageStatus, tuple[str, int | None]]:
        """status -> (source, error_code), one entry per history row."""
        found = self._query(
            "SELECT status, source, error_code FROM message_status_history WHERE message_id = %s",
            (message_id,),
        )
        return {MessageStatus(str(s)): (str(src), code) for s, src, code in found}  # type: ignore[misc]

    def history_rows(self, ids: Sequence[int]) -> int:
        found = self._query(
            "SELECT count(*) FROM message_status_history WHERE message_id = ANY(%s)", (list(ids),)
        )
        return int(str(found[0][0]))
