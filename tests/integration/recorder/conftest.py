"""Fixtures of the recorder's integration tests: the messages table and status stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from notifier.common.db import Database
from notifier.recorder.store import EventStore
from tests.integration.recorder.message_rows import Messages


@pytest.fixture
def messages(database_url: str) -> Messages:
    return Messages(database_url)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url, "recorder-tests", max_connections=4)
    yield db
    db.close()


@pytest.fixture
def store(database: Database) -> EventStore:
    return EventStore(database)


@pytest.fixture
def store_factory(database_url: str) -> Iterator[Callable[[], EventStore]]:
    """Stores on databases pools of their own, as two recorder replicas would have."""
    pools: list[Database] = []

    def make() -> EventStore:
        pools.append(Database(database_url, "recorder-tests", max_connections=2))
        return EventStore(pools[-1])

    yield make
    for pool in pools:
        pool.close()
