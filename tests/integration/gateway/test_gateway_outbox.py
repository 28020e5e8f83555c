"""Accepted means durable: what was committed but never confirmed published is relayed,
and relays on several replicas split the unconfirmed rows between them."""

from __future__ import annotations

import pytest
from gateway_support import FAST_RELAY, TopicReader, gateway_settings, outbox_row, stamped

from notifier.common.db import Database
from notifier.gateway.catalog import TemplateCatalog
from notifier.gateway.main import start_gateway
from notifier.gateway.model import SendRequest
from notifier.gateway.repository import MessageStore, OutboxStore
from notifier.gateway.validation import validate_send
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration


def test_the_relay_publishes_a_committed_row_that_was_never_published(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str
) -> None:
    # Commit a message the way an accept does, and publish nothing.
    db = Database(gateway_database_url, "gateway-test")
    try:
        catalog = TemplateCatalog(db, refresh_seconds=60)
        catalog.reload()
        request = SendRequest("+447700900200", "delivery_eta", {
            "order_id": "ORD-R1", "estimated_delivery": "tomorrow"
        })  # fmt: skip
        inserted = MessageStore(db).insert(validate_send(request, catalog))
    finally:
        db.close()
    assert outbox_row(gateway_database_url, inserted.message_id) == (None, 0)

    settings = gateway_settings(gateway_database_url, kafka_bootstrap, outbound_topic, **FAST_RELAY)
    gateway = start_gateway(settings, serve_metrics=False)
    reader = TopicReader(kafka_bootstrap, outbound_topic)
    try:
        record = reader.wait_for(inserted.message_id)
        _, count = wait_until(lambda: stamped(gateway_database_url, inserted.message_id))
    finally:
        reader.close()
        gateway.stop(grace=1.0)
    assert record.key == b"+447700900200"
    assert record.command.content_sid.startswith("HX")
    assert record.command.content_variables == {"1": "ORD-R1", "2": "tomorrow"}
    assert record.command.accepted_at.tzinfo is not None
    assert count == 1


def test_relays_on_two_replicas_claim_disjoint_rows(gateway_database_url: str) -> None:
    db = Database(gateway_database_url, "gateway-test", max_connections=4)
    try:
        catalog = TemplateCatalog(db, refresh_seconds=60)
        catalog.reload()
        order = f"ORD-{random_suffix()}"
        request = SendRequest("+447700900201", "order_confirmation", {"order_id": order}, order)
        store = MessageStore(db)
        ids = {store.insert(validate_send(request, catalog)).message_id for _ in range(6)}
        outbox = OutboxStore(db)
        with outbox.claim_unpublished(0, 3) as first, outbox.claim_unpublished(0, 500) as second:
            mine = {c.message_id for c in first.commands} & ids
            theirs = {c.message_id for c in second.commands} & ids
            first.mark_published([c.message_id for c in first.commands])
        assert len(mine) == 3
        assert not mine & theirs
        assert mine | theirs == ids
        # What the first claim stamped is not claimed again; the rest is.
        with outbox.claim_unpublished(0, 500) as again:
            assert {c.message_id for c in again.commands} & ids == theirs
    finally:
        db.close()
