"""PostgreSQL side of inbound messages: `inbound_messages` and `opt_outs`, set-based.

Two statements per batch, inside the caller's transaction: insert the messages (a
redelivered SID is dropped), linked to their customer's latest order; then apply the
latest opt-out change per number if it is newer than the stored one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notifier.common.domain.messages import InboundMessage
from notifier.common.domain.optout import OptChange
from notifier.recorder.inbound_fold import OptUpdate, latest_opt_changes, unique_messages
from notifier.recorder.pg_arrays import bool_array, int_array, text_array

# The link is read when the message is recorded: the customer's most recent outbound
# message that names a customer, and the most recent that names an order (a session
# message without an order does not hide the order the customer is writing about).
# Both walk messages_phone_idx from the newest row.
_INSERT_INBOUND = """
INSERT INTO inbound_messages (
    twilio_sid, phone_number, to_number, body, profile_name, wa_id, button_payload,
    button_text, num_media, opt_out_type, received_at, customer_id, order_id)
SELECT v.sid, v.phone, v.to_number, v.body, v.profile_name, v.wa_id, v.button_payload,
       v.button_text, v.num_media, v.opt_out_type, v.received_at,
       (SELECT m.customer_id FROM messages AS m
         WHERE m.phone_number = v.phone AND m.customer_id IS NOT NULL
         ORDER BY m.created_at DESC, m.id DESC LIMIT 1),
       (SELECT m.order_id FROM messages AS m
         WHERE m.phone_number = v.phone AND m.order_id IS NOT NULL
         ORDER BY m.created_at DESC, m.id DESC LIMIT 1)
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::integer[], %s::text[], %s::timestamptz[])
     AS v(sid, phone, to_number, body, profile_name, wa_id, button_payload, button_text,
          num_media, opt_out_type, received_at)
ON CONFLICT (twilio_sid) DO NOTHING
RETURNING twilio_sid, customer_id, order_id
"""

# Newer-only, like the status rank guard: STOP and START may be applied in any order
# (redelivery, two recorders during a rebalance) and the later message still wins.
_UPSERT_OPT_OUTS = """
INSERT INTO opt_outs AS o (phone_number, opted_out, keyword, changed_at)
SELECT * FROM unnest(%s::text[], %s::boolean[], %s::text[], %s::timestamptz[])
ON CONFLICT (phone_number) DO UPDATE SET
    opted_out = EXCLUDED.opted_out,
    keyword = EXCLUDED.keyword,
    changed_at = EXCLUDED.changed_at,
    updated_at = now()
WHERE o.changed_at < EXCLUDED.changed_at
RETURNING o.phone_number
"""


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What recording one inbound message did.

    `recorded` is False for a copy already on record (then the link is unknown).
    `opt_applied` is True when its opt-out change is the number's state now; False
    when a change received later was already stored (or a later one in the batch won).
    """

    message: InboundMessage
    recorded: bool
    customer_id: str | None = None
    order_id: str | None = None
    opt_change: OptChange | None = None
    opt_applied: bool = False


def record_inbound(cur: Any, messages: Sequence[InboundMessage]) -> tuple[InboundOutcome, ...]:
    """Inserts the messages and applies their opt-out changes, in the caller's transaction."""
    if not messages:
        return ()
    unique = unique_messages(messages)
    links = _insert_messages(cur, unique)
    updates = latest_opt_changes(unique)
    applied_sids = _apply_opt_changes(cur, updates)
    outcomes = []
    for message in messages:
        link = links.pop(message.twilio_sid, None)  # a copy later in the batch is a repeat
        outcomes.append(
            InboundOutcome(
                message=message,
                recorded=link is not None,
                customer_id=link[0] if link else None,
                order_id=link[1] if link else None,
                opt_change=message.opt_change,
                opt_applied=message.twilio_sid in applied_sids,
            )
        )
        applied_sids.discard(message.twilio_sid)
    return tuple(outcomes)


def _insert_messages(
    cur: Any, messages: Sequence[InboundMessage]
) -> dict[str, tuple[str | None, str | None]]:
    """Twilio SID -> (customer_id, order_id) of each message inserted now."""
    cur.execute(
        _INSERT_INBOUND,
        (
            text_array(m.twilio_sid for m in messages),
            text_array(m.from_number for m in messages),
            text_array(m.to_number for m in messages),
            text_array(m.body for m in messages),
            text_array(m.profile_name for m in messages),
            text_array(m.wa_id for m in messages),
            text_array(m.button_payload for m in messages),
            text_array(m.button_text for m in messages),
            int_array(m.num_media for m in messages),
            text_array(m.opt_out_type for m in messages),
            text_array(m.received_at.isoformat() for m in messages),
        ),
    )
    return {sid: (customer_id, order_id) for sid, customer_id, order_id in cur.fetchall()}


def _apply_opt_changes(cur: Any, updates: Sequence[OptUpdate]) -> set[str]:
    """The SIDs of the messages whose change is now their number's state."""
    if not updates:
        return set()
    cur.execute(
        _UPSERT_OPT_OUTS,
        (
            text_array(u.phone_number for u in updates),
            bool_array(u.opted_out for u in updates),
            text_array(u.keyword for u in updates),
            text_array(u.changed_at.isoformat() for u in updates),
        ),
    )
    applied = {row[0] for row in cur.fetchall()}
    return {u.twilio_sid for u in updates if u.phone_number in applied}
