"""PostgreSQL side of the recorder: applies a batch of events in one transaction.

Owns the SQL for the status columns of `messages` and for `message_status_history`;
inbound messages go through `inbound_store` in the same transaction. At most six
statements per batch whatever its size: look up by id (and by SID when needed), UPDATE
from arrays, INSERT history from arrays, then the inbound pair. Safe to run twice and
to race with another recorder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg2

from notifier.common.db import Database
from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import Event, InboundMessage, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import PermanentError
from notifier.recorder.fold import MessageUpdate, fold_changes
from notifier.recorder.inbound_store import InboundOutcome, record_inbound
from notifier.recorder.pg_arrays import int_array, text_array

# The messages a batch names, by id; then, only for the SIDs those rows do not already
# account for (SID-only callbacks, a first SID for a message), who owns them.
_BY_ID = "SELECT id, twilio_sid FROM messages WHERE id = ANY(%s::bigint[])"
_BY_SID = "SELECT id, twilio_sid FROM messages WHERE twilio_sid = ANY(%s::text[])"

# The domain's rank guard, repeated because two recorders can race on a row:
# under READ COMMITTED the UPDATE re-checks it against the row another
# transaction just committed. A final status outranks everything, so nothing
# moves a message out of it; the explicit test says so to the reader.
_ADVANCES = (
    "(message_status_rank(m.status) < message_status_rank(v.status)"
    " AND m.status NOT IN ('FAILED', 'UNDELIVERED'))"
)
_FINAL = "v.status IN ('FAILED', 'UNDELIVERED')"

# A SID is recorded even when the status does not move (the sender's SENDING
# result often arrives after Twilio's first callback), and never replaced.
_UPDATE = f"""
UPDATE messages AS m SET
    status = CASE WHEN {_ADVANCES} THEN v.status ELSE m.status END,
    error_code = CASE WHEN {_ADVANCES} AND {_FINAL} THEN v.error_code ELSE m.error_code END,
    error_message = CASE WHEN {_ADVANCES} AND {_FINAL}
                         THEN v.error_message ELSE m.error_message END,
    twilio_sid = coalesce(m.twilio_sid, v.sid),
    updated_at = now()
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::integer[], %s::text[])
     AS v(id, status, sid, error_code, error_message)
WHERE m.id = v.id AND ({_ADVANCES} OR (m.twilio_sid IS NULL AND v.sid IS NOT NULL))
RETURNING m.id, m.status
"""

# Every status a message reached is recorded once, even when it arrives after
# a later one; the first report of a status wins.
_INSERT_HISTORY = """
INSERT INTO message_status_history
    (message_id, status, error_code, error_message, occurred_at, source)
SELECT * FROM unnest(
    %s::bigint[], %s::text[], %s::integer[], %s::text[], %s::timestamptz[], %s::text[])
ON CONFLICT (message_id, status) DO NOTHING
"""


class IgnoreReason(StrEnum):
    UNKNOWN_MESSAGE = "unknown_message"
    UNKNOWN_SID = "unknown_sid"


@dataclass(frozen=True, slots=True)
class Ignored:
    change: StatusChange
    reason: IgnoreReason


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a batch did: the changes applied (resolved to a message id), those
    ignored and why, changes whose SID belongs to another message (their status
    was applied, the SID was not), each message row that changed, and what became
    of each inbound message."""

    applied: tuple[StatusChange, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    sid_conflicts: tuple[StatusChange, ...] = ()
    changed: tuple[tuple[MessageId, MessageStatus], ...] = ()
    history_rows: int = 0
    inbound: tuple[InboundOutcome, ...] = ()


class EventStore:
    """Applies status changes to `messages` and `message_status_history`, and records
    inbound messages and the opt-outs they make."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def apply(self, events: Sequence[Event]) -> ApplyResult:
        """Applies a batch in one transaction. Idempotent: applying it again changes nothing.

        Raises TransientError when PostgreSQL is away (retry the batch), and
        PermanentError when it rejects the data (retrying the same batch cannot help).
        """
        if not events:
            return ApplyResult()
        changes = [e for e in events if isinstance(e, StatusChange)]
        inbound = [e for e in events if isinstance(e, InboundMessage)]
        try:
            with self._db.transaction() as cur:
                result = _apply_changes(cur, changes) if changes else ApplyResult()
                outcomes = record_inbound(cur, inbound)
        except (psycopg2.DataError, psycopg2.IntegrityError, ValueError) as exc:
            raise PermanentError(f"PostgreSQL rejected the batch: {exc}".strip()) from exc
        return dataclasses.replace(result, inbound=outcomes)


def _apply_changes(cur: Any, changes: Sequence[StatusChange]) -> ApplyResult:
    known_ids, sid_owners = _lookup(cur, changes)
    applied, ignored, conflicts = _resolve(changes, known_ids, sid_owners)
    updates = fold_changes(applied)
    return ApplyResult(
        applied=tuple(applied),
        ignored=tuple(ignored),
        sid_conflicts=tuple(conflicts),
        changed=_update_messages(cur, updates),
        history_rows=_insert_history(cur, updates),
    )


def _lookup(cur: Any, changes: Sequence[StatusChange]) -> tuple[set[int], dict[str, int]]:
    """The stored messages the changes name, and the stored owner of each of their SIDs.

    A SID stored on a message the batch names by id needs no second look (SIDs are
    unique); in the steady state (callbacks after the SENDING result) that is all of them.
    """
    known_ids: set[int] = set()
    sid_owners: dict[str, int] = {}

    def read(rows: list[tuple[int, str | None]]) -> None:
        for message_id, sid in rows:
            known_ids.add(message_id)
            if sid is not None:
                sid_owners[sid] = message_id

    ids = sorted({c.message_id for c in changes if c.message_id is not None})
    if ids:
        cur.execute(_BY_ID, (int_array(ids),))
        read(cur.fetchall())
    unaccounted = sorted(
        {c.twilio_sid for c in changes if c.twilio_sid is not None} - sid_owners.keys()
    )
    if unaccounted:
        cur.execute(_BY_SID, (text_array(unaccounted),))
        read(cur.fetchall())
    return known_ids, sid_owners


def _resolve(
    changes: Sequence[StatusChange], known_ids: set[int], sid_owners: dict[str, int]
) -> tuple[list[StatusChange], list[Ignored], list[StatusChange]]:
    """Gives SID-only changes their message id and drops what names no message.

    A SID is claimed by the stored row that has it, else by the first change of
    the batch that carries it with a known id, so a callback that names only a
    SID finds the message whose SENDING result is in the same batch.
    """
    owners = dict(sid_owners)
    for c in changes:
        if c.message_id in known_ids and c.twilio_sid is not None:
            owners.setdefault(c.twilio_sid, c.message_id)
    applied: list[StatusChange] = []
    ignored: list[Ignored] = []
    conflicts: list[StatusChange] = []
    for c in changes:
        if c.message_id is None:
            owner = owners.get(c.twilio_sid) if c.twilio_sid is not None else None
            if owner is None:
                ignored.append(Ignored(c, IgnoreReason.UNKNOWN_SID))
                continue
            c = dataclasses.replace(c, message_id=MessageId(owner))
        elif c.message_id not in known_ids:
            ignored.append(Ignored(c, IgnoreReason.UNKNOWN_MESSAGE))
            continue
        elif c.twilio_sid is not None and owners[c.twilio_sid] != c.message_id:
            # The unique SID column would reject the whole batch; keep the status.
            conflicts.append(c)
            c = dataclasses.replace(c, twilio_sid=None)
        applied.append(c)
    return applied, ignored, conflicts


def _update_messages(
    cur: Any, updates: list[MessageUpdate]
) -> tuple[tuple[MessageId, MessageStatus], ...]:
    if not updates:
        return ()
    cur.execute(
        _UPDATE,
        (
            int_array(u.message_id for u in updates),
            text_array(u.status.value for u in updates),
            text_array(u.twilio_sid for u in updates),
            int_array(u.error_code for u in updates),
            text_array(u.error_message for u in updates),
        ),
    )
    return tuple((MessageId(row[0]), MessageStatus(row[1])) for row in cur.fetchall())


def _insert_history(cur: Any, updates: list[MessageUpdate]) -> int:
    entries = [entry for u in updates for entry in u.history]
    if not entries:
        return 0
    cur.execute(
        _INSERT_HISTORY,
        (
            int_array(e.message_id for e in entries),
            text_array(e.status.value for e in entries),
            int_array(e.error_code for e in entries),
            text_array(e.error_message for e in entries),
            text_array(e.occurred_at.isoformat() for e in entries),
            text_array(e.source.value for e in entries),
        ),
    )
    rowcount: int = cur.rowcount
    return rowcount
