"""Fixtures of the fuzz tests: a gateway of their own (fresh migrated database, one-partition
outbound topic), a channel to it, a reader of its topic and a cheap row counter."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from notifier.common.migrate import apply_migrations
from notifier.devstack.tansu import delete_topics
from notifier.gateway.main import RunningGateway, start_gateway
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database
from tests.fixtures.waiting import random_suffix
from tests.fuzz.gateway_state import Ledger, Rows
from tests.fuzz.grpc_inputs import DISABLED_TEMPLATE
from tests.integration.gateway.gateway_support import TopicReader, gateway_settings, query


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fuzz: property-based fuzzing of a public interface (thousands of cases)"
    )


@pytest.fixture(scope="module")
def fuzz_database_url(pg_server_url: str) -> Iterator[str]:
    """Migrated (the seed's five templates), plus one disabled template."""
    with created_database(pg_server_url) as url:
        apply_migrations(url, MIGRATIONS_DIR)
        query(
            url,
            """INSERT INTO templates (name, content_sid, body, parameters, enabled)
               VALUES (%s, 'HX' || md5(%s), 'Bye', '[]', false) RETURNING name""",
            DISABLED_TEMPLATE,
            DISABLED_TEMPLATE,
        )
        yield url


@pytest.fixture(scope="module")
def fuzz_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A name only; the gateway creates the topic (one partition) when it starts."""
    name = f"fuzz.outbound.{random_suffix()}"
    yield name
    delete_topics(kafka_bootstrap, [name])


@pytest.fixture(scope="module")
def gateway(
    fuzz_database_url: str, kafka_bootstrap: str, fuzz_topic: str
) -> Iterator[RunningGateway]:
    settings = gateway_settings(fuzz_database_url, kafka_bootstrap, fuzz_topic, log_level="INFO")
    running = start_gateway(settings, serve_metrics=False)
    yield running
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def channel(gateway: RunningGateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"localhost:{gateway.port}") as chan:
        yield chan


@pytest.fixture(scope="module")
def topic(gateway: RunningGateway, kafka_bootstrap: str, fuzz_topic: str) -> Iterator[TopicReader]:
    reader = TopicReader(kafka_bootstrap, fuzz_topic)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def rows(fuzz_database_url: str) -> Iterator[Rows]:
    counter = Rows(fuzz_database_url)
    yield counter
    counter.close()


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()
