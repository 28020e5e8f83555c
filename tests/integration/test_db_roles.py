"""Each process's database role (migrations/0003_roles.sql) runs that process's real SQL,
and is refused what belongs to another process."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.errors
import pytest

from notifier.common.db import Database
from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import InboundMessage, Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.domain.templates import Template, TemplateParameter
from notifier.common.migrate import apply_migrations
from notifier.gateway.catalog import TemplateCatalog
from notifier.gateway.model import Existing, Inserted, SendRequest
from notifier.gateway.repository import MessageStore, OutboxStore
from notifier.gateway.validation import validate_list, validate_send
from notifier.operator.store import TemplateStore
from notifier.recorder.store import EventStore
from notifier.sender.rate_slots import PostgresSlotLeaser
from notifier.sender.status_store import MessageStatusStore
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database
from tests.fixtures.roles import PROCESS_ROLES, login_user
from tests.fixtures.waiting import random_suffix

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# What each role must never do: another process's writes, or rows nobody may delete.
REFUSED = {
    "notifier_gateway": [
        "UPDATE messages SET status = 'READ' WHERE id = 1",
        "UPDATE outbox SET message_id = 2 WHERE message_id = 1",
        "DELETE FROM messages WHERE id = 1",
        "UPDATE templates SET enabled = false",
        "INSERT INTO opt_outs (phone_number, opted_out, keyword, changed_at)"
        " VALUES ('+447700900999', true, 'STOP', now())",
    ],
    "notifier_sender": [
        "UPDATE messages SET status = 'SENDING' WHERE id = 1",
        "INSERT INTO message_status_history (message_id, status, occurred_at, source)"
        " VALUES (1, 'SENDING', now(), 'sender')",
        "DELETE FROM sender_rate_slots",
        "SELECT count(*) FROM outbox",
    ],
    "notifier_recorder": [
        "UPDATE messages SET phone_number = '+447700900999' WHERE id = 1",
        "INSERT INTO messages (phone_number, template_id, content_sid)"
        " VALUES ('+447700900999', 'order_confirmation', 'HX0')",
        "UPDATE templates SET enabled = false",
        "INSERT INTO templates (name, content_sid, body, parameters)"
        " VALUES ('x', 'HX0', 'x', '[]')",
        "UPDATE outbox SET published_at = now()",
        "DELETE FROM inbound_messages",
    ],
    "notifier_operator": [
        "SELECT count(*) FROM messages",
        "UPDATE messages SET status = 'READ' WHERE id = 1",
        "DELETE FROM templates WHERE name = 'order_confirmation'",
        "INSERT INTO outbox (message_id) VALUES (1)",
    ],
}


@pytest.fixture(scope="module")
def owner_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database, migrated by its owner, as the migration Job does."""
    with created_database(pg_server_url) as url:
        apply_migrations(url, MIGRATIONS_DIR)
        yield url


@pytest.fixture(scope="module")
def role_db(owner_url: str) -> Iterator[dict[str, Database]]:
    """A connection pool per role, each as a LOGIN user that is a member of that role only."""
    with ExitStack() as cleanup:
        pools: dict[str, Database] = {}
        for role in PROCESS_ROLES:
            url = cleanup.enter_context(login_user(owner_url, role))
            pools[role] = Database(url, f"roles-test-{role}", max_connections=2)
            cleanup.callback(pools[role].close)
        yield pools


def accept(db: Database, phone: str, key: str = "") -> Inserted | Existing:
    catalog = TemplateCatalog(db, refresh_seconds=60)
    catalog.reload()
    request = SendRequest(
        phone, "delivery_eta", {"order_id": "ORD-1", "estimated_delivery": "today"},
        "ORD-1", "CUST-1", key,
    )  # fmt: skip
    return MessageStore(db).insert(validate_send(request, catalog))


def new_number() -> str:
    return "+4477" + "".join(secrets.choice("0123456789") for _ in range(9))


def test_the_migration_reapplies_on_a_cluster_where_the_roles_exist(
    pg_server_url: str, owner_url: str
) -> None:
    with created_database(pg_server_url) as url:
        applied = apply_migrations(url, MIGRATIONS_DIR)
    assert "0003_roles.sql" in applied
    rows = query(owner_url, "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
                 list(PROCESS_ROLES))  # fmt: skip
    assert sorted(rows) == sorted((role, False) for role in PROCESS_ROLES)


def test_the_gateway_role_accepts_relays_and_reads(
    role_db: dict[str, Database], owner_url: str
) -> None:
    db = role_db["notifier_gateway"]
    key = f"key-{random_suffix()}"
    inserted = accept(db, new_number(), key)
    assert isinstance(inserted, Inserted)
    again = accept(db, new_number(), key)  # the key's owner is read back: a conflict
    assert isinstance(again, Existing) and again.message_id == inserted.message_id

    store, outbox = MessageStore(db), OutboxStore(db)
    got = store.get(inserted.message_id)
    assert got is not None and got.status is MessageStatus.QUEUED
    listed = store.list(validate_list("ORD-1", "", None, 10, 0))
    assert inserted.message_id in [m.message_id for m in listed]
    with outbox.claim_unpublished(0, 10) as claim:  # the relay's pass: FOR UPDATE, stamp
        assert inserted.message_id in [c.message_id for c in claim.commands]
        claim.mark_published([inserted.message_id])
    outbox.mark_published([inserted.message_id])  # the publisher's stamp
    with db.transaction() as cur:  # session messages' window and opt-out state
        cur.execute("SELECT max(received_at) FROM inbound_messages WHERE phone_number = 'x'")
        cur.execute("SELECT opted_out FROM opt_outs WHERE phone_number = 'x'")

    [(count,)] = query(owner_url, "SELECT publish_count FROM outbox WHERE message_id = %s",
                       inserted.message_id)  # fmt: skip
    assert count == 2


def test_the_sender_role_checks_a_message_and_leases_send_slots(
    role_db: dict[str, Database],
) -> None:
    message = accept(role_db["notifier_gateway"], new_number())
    db = role_db["notifier_sender"]

    state = MessageStatusStore(db).state_of(message.message_id)
    assert state is not None and state.status is MessageStatus.QUEUED
    leaser = PostgresSlotLeaser(db, f"whatsapp:+1415{random_suffix()}", spacing=0.0125)
    first = leaser.lease(4, lead=0.01)  # creates the sender's row, then leases
    second = leaser.lease(4, lead=0.01)
    assert second.first_at >= first.first_at + 4 * 0.0125 - 1e-6


def test_the_recorder_role_applies_statuses_replies_and_opt_outs(
    role_db: dict[str, Database], owner_url: str
) -> None:
    phone = new_number()
    message = accept(role_db["notifier_gateway"], phone)
    sid = TwilioSid("SM" + secrets.token_hex(16))
    store = EventStore(role_db["notifier_recorder"])

    store.apply([
        StatusChange(message.message_id, sid, MessageStatus.SENDING, T0, Source.SENDER),
        StatusChange(MessageId(message.message_id), None, MessageStatus.DELIVERED,
                     T0 + timedelta(seconds=1), Source.TWILIO),
        inbound(phone, "STOP", at=2, opt_out_type="STOP"),
    ])  # fmt: skip
    store.apply([inbound(phone, "START", at=3, opt_out_type="START")])  # the opt-out's UPDATE

    [(status, twilio_sid)] = query(owner_url, "SELECT status, twilio_sid FROM messages "
                                   "WHERE id = %s", message.message_id)  # fmt: skip
    assert (status, twilio_sid) == ("DELIVERED", sid)
    assert query(owner_url, "SELECT opted_out, keyword FROM opt_outs WHERE phone_number = %s",
                 phone) == [(False, "START")]  # fmt: skip
    [(replies,)] = query(owner_url, "SELECT count(*) FROM inbound_messages "
                         "WHERE phone_number = %s AND order_id = 'ORD-1'", phone)  # fmt: skip
    assert replies == 2


def test_the_operator_role_upserts_and_retires_templates(role_db: dict[str, Database]) -> None:
    store = TemplateStore(role_db["notifier_operator"])
    name = f"roles_{random_suffix()}"
    template = Template(name, "HX" + "0" * 32, "Hi {{who}}", (TemplateParameter("who"),))

    assert store.upsert(template, "ns/roles").created
    assert not store.upsert(template, "ns/roles").created
    assert store.retire("ns/roles") == (name,)


@pytest.mark.parametrize(
    ("role", "statement"),
    [(role, statement) for role, statements in REFUSED.items() for statement in statements],
)
def test_a_role_is_refused_what_another_process_owns(
    role_db: dict[str, Database], role: str, statement: str
) -> None:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege), role_db[role].transaction() as cur:
        cur.execute(statement)


def inbound(phone: str, body: str, *, at: float, opt_out_type: str) -> InboundMessage:
    return InboundMessage(
        twilio_sid=TwilioSid("SM" + secrets.token_hex(16)),
        from_number=phone,
        to_number="+14155238886",
        received_at=T0 + timedelta(seconds=at),
        body=body,
        opt_out_type=opt_out_type,
    )


def query(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()
