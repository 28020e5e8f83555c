"""The embedded backends behave as the rest of the test suite and the dev stack rely on."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from notifier.devstack.postgres import TEST_SETTINGS, EmbeddedPostgres, StopMode
from notifier.devstack.processes import BackendError
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.kafka import consumer_config, producer_config
from tests.fixtures.postgres import MIGRATIONS_DIR, embedded_postgres
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A server of this module's own: these tests restart it, which the shared one must not see."""
    with embedded_postgres() as server:
        yield server


def _fetch_one(url: str, query: str) -> tuple[object, ...]:
    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
            assert row is not None
            return row
    finally:
        conn.close()


def test_embedded_postgres_answers_over_tcp(own_postgres: EmbeddedPostgres) -> None:
    one, address, port = _fetch_one(
        own_postgres.dsn, "SELECT 1, host(inet_server_addr()), inet_server_port()"
    )
    assert (one, address, port) == (1, "127.0.0.1", own_postgres.port)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_embedded_postgres_keeps_committed_data_across_a_restart(
    own_postgres: EmbeddedPostgres, mode: StopMode
) -> None:
    table = f"kept_{random_suffix()}"
    conn = psycopg2.connect(own_postgres.dsn)
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (note text)")
        cur.execute(f"INSERT INTO {table} VALUES ('before restart')")
    port = own_postgres.port

    own_postgres.restart(mode)  # immediate: a crash, recovered from the WAL on start

    # The connection from before died with the old server.
    with pytest.raises(psycopg2.OperationalError), conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()
    assert own_postgres.is_running()
    assert own_postgres.port == port
    assert _fetch_one(own_postgres.dsn, f"SELECT note FROM {table}") == ("before restart",)


def test_embedded_postgres_start_failure_shows_the_server_log() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="notifier-test-pg-"))
    try:
        server = EmbeddedPostgres(data_dir, settings={**TEST_SETTINGS, "max_connections": "lots"})
        with pytest.raises(BackendError, match='invalid value for parameter "max_connections"'):
            server.start()
        assert not server.is_running()
    finally:
        shutil.rmtree(data_dir)


def test_fresh_databases_are_empty_and_dropped_afterwards(
    fresh_database_url: Callable[[], str],
) -> None:
    first, second = fresh_database_url(), fresh_database_url()

    assert first != second
    (tables,) = _fetch_one(first, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert tables == 0


def test_shared_database_has_every_migration(database_url: str) -> None:
    (applied,) = _fetch_one(
        database_url, "SELECT array_agg(name ORDER BY version) FROM schema_migrations"
    )
    assert applied == sorted(path.name for path in MIGRATIONS_DIR.glob("*.sql"))


def test_tansu_delivers_every_record_to_a_consumer_group(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("backends", partitions=3)
    producer = Producer(producer_config(kafka_bootstrap))
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _message: Message) -> None:
        if err is not None:
            failures.append(err)

    for i in range(100):
        producer.produce(
            topic, key=f"recipient-{i % 7}", value=str(i).encode(), on_delivery=delivered
        )
    assert producer.flush(10) == 0
    assert failures == []

    consumer = Consumer(consumer_config(kafka_bootstrap, f"backends-{random_suffix()}"))
    consumer.subscribe([topic])
    seen: set[int] = set()

    def consume_some() -> bool:
        for message in consumer.consume(num_messages=100, timeout=0.5):
            assert message.error() is None, message.error()
            value = message.value()
            assert value is not None
            seen.add(int(value))
            consumer.store_offsets(message=message)  # only after it was handled
        return len(seen) == 100

    try:
        wait_until(consume_some, timeout=20, message=lambda: f"100 records, saw {len(seen)}")
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        consumer.close()
    assert seen == set(range(100))
    assert sum(tp.offset for tp in committed) == 100


def test_tansu_restart_loses_every_topic(kafka_broker: TansuBroker) -> None:
    topic = f"lost.{random_suffix()}"
    kafka_broker.create_topics([topic], partitions=2)
    port = kafka_broker.port

    kafka_broker.restart()

    assert kafka_broker.is_running()
    assert kafka_broker.port == port
    topics = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}).list_topics(
        timeout=10
    )
    assert topic not in topics.topics
