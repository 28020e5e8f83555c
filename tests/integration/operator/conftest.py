"""Fixtures for the operator's handler tests: a Database on the shared migrated database, a Memo
holding it, and the Kubernetes events the handlers post.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import kopf
import pytest
from kopf._core.engines import posting

from notifier.common.db import Database
from tests.integration.operator.operator_calls import RETRY_DELAY, PostedEvents


@pytest.fixture(autouse=True)
def posted_events() -> Iterator[PostedEvents]:
    # kopf's event functions find the operator's settings and queue in context variables.
    loop = asyncio.new_event_loop()
    events = PostedEvents(loop, asyncio.Queue())
    tokens = (
        posting.settings_var.set(kopf.OperatorSettings()),
        posting.event_queue_var.set(events.queue),
        posting.event_queue_loop_var.set(loop),
    )
    try:
        yield events
    finally:
        posting.event_queue_loop_var.reset(tokens[2])
        posting.event_queue_var.reset(tokens[1])
        posting.settings_var.reset(tokens[0])
        loop.close()


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url, "operator-tests", max_connections=4)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def memo(database: Database) -> kopf.Memo:
    return kopf.Memo(db=database, retry_delay=RETRY_DELAY)
