"""Helpers for the gateway's integration tests: settings, a topic reader, row counts.

Each test module gets its own migrated database, so a relay in one module never
republishes another module's rows onto its topic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg2
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from notifier.common.config import DatabaseSettings, KafkaSettings, Topics
from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.payloads import decode_send_command, encode_send_command
from notifier.gateway.settings import GatewaySettings
from tests.fixtures.waiting import random_suffix, wait_until


def gateway_settings(
    database_url: str, bootstrap_servers: str, topic: str, **overrides: Any
) -> GatewaySettings:
    """Port 0 for gRPC and metrics, few workers, and one partition so records keep order."""
    settings = GatewaySettings(
        database=DatabaseSettings(database_url),
        kafka=KafkaSettings(bootstrap_servers, topics=Topics(outbound=topic), partitions=1),
        grpc_port=0,
        metrics_port=0,
        max_workers=4,
        grace_seconds=1.0,
        template_refresh_seconds=0.5,
        log_level="DEBUG",
    )
    return dataclasses.replace(settings, **overrides)


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes
    command: SendCommand


class TopicReader:
    """Reads a topic from its beginning; every call to `records` catches up first."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": f"gateway-test-{random_suffix()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._records: list[Record] = []

    def records(self) -> list[Record]:
        while (message := self._consumer.poll(0.05)) is not None:
            if message.error() is None:
                self._records.append(Record(message.key(), decode_send_command(message.value())))
        return list(self._records)

    def ids(self) -> list[int]:
        return [r.command.message_id for r in self.records()]

    def wait_for(self, message_id: int, timeout: float = 10.0) -> Record:
        def find() -> Record | None:
            return next((r for r in self.records() if r.command.message_id == message_id), None)

        return wait_until(find, timeout, message=f"message {message_id} on the topic")

    def close(self) -> None:
        self._consumer.close()


@contextmanager
def connection(database_url: str) -> Iterator[Any]:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def query(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with connection(database_url) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def row_counts(database_url: str) -> tuple[int, int, int]:
    """Rows in messages, message_status_history and outbox."""
    (counts,) = query(
        database_url,
        """SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_status_history),
                  (SELECT count(*) FROM outbox)""",
    )
    return counts[0], counts[1], counts[2]


def outbox_row(database_url: str, message_id: int) -> tuple[Any, int] | None:
    """(published_at, publish_count) of the message's outbox entry."""
    rows = query(
        database_url,
        "SELECT published_at, publish_count FROM outbox WHERE message_id = %s",
        message_id,
    )
    return (rows[0][0], rows[0][1]) if rows else None


# The relay looks often and takes rows at once, so these tests wait well under a second.
FAST_RELAY = {"relay_interval_seconds": 0.1, "relay_after_seconds": 0.2}


def stamped(database_url: str, message_id: int) -> tuple[Any, int] | None:
    row = outbox_row(database_url, message_id)
    return row if row is not None and row[0] is not None else None


def produce_marker(bootstrap_servers: str, topic: str) -> int:
    """Produces a SendCommand no gateway would make (id 2^62); returns its id."""
    marker = MessageId(2**62)
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    command = SendCommand(marker, "+10000000000", "marker", "HX0", {}, datetime.now(UTC))
    producer.produce(topic, key=b"marker", value=encode_send_command(command))
    assert producer.flush(10) == 0
    return marker
