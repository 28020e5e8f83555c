"""A consumer whose topic the broker lost takes it up again as soon as it is created again.

After a broker lost its data (the in-memory dev broker restarted), a consumer rejoins its
group before the topic's owner has put the topic back (its TopicKeeper checks every few
seconds) and is assigned nothing. It must notice the topic within seconds of its return,
not at librdkafka's default metadata refresh (5 minutes): the chaos run found every
command published meanwhile waiting that long, QUEUED.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from notifier.common.config import KafkaSettings
from notifier.common.kafka import ensure_topics, make_consumer, make_producer
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration


class _Watched:
    """A subscribed consumer that records its assignments and the records it gets."""

    def __init__(self, consumer: Consumer, topic: str) -> None:
        self.consumer = consumer
        self.events: list[tuple[str, int]] = []
        self.values: list[bytes] = []
        consumer.subscribe(
            [topic],
            on_assign=lambda _c, parts: self._event("assigned", parts),
            on_revoke=lambda _c, parts: self._event("revoked", parts),
            on_lost=lambda _c, parts: self._event("lost", parts),
        )

    def _event(self, what: str, partitions: list[TopicPartition]) -> None:
        self.events.append((what, len(partitions)))

    def poll(self) -> None:
        for record in self.consumer.consume(100, 0.1):
            if record.error() is None:
                self.values.append(record.value() or b"")


def test_a_consumer_assigned_nothing_while_its_topic_was_missing_takes_it_up_when_it_returns(
    kafka_broker: TansuBroker,
) -> None:
    topic = f"recreated.{random_suffix()}"
    settings = KafkaSettings(kafka_broker.bootstrap_servers, partitions=2, session_timeout_ms=6000)
    ensure_topics(settings, [topic])
    watched = _Watched(make_consumer(settings, f"group-{random_suffix()}", "recreated"), topic)
    try:
        wait_until(
            lambda: watched.poll() or ("assigned", 2) in watched.events,
            timeout=30,
            message="the first assignment",
        )
        seen = len(watched.events)
        kafka_broker.restart()  # every topic, record and group is gone

        def assigned_nothing() -> bool:
            watched.poll()
            return ("assigned", 0) in watched.events[seen:]

        wait_until(
            assigned_nothing,
            timeout=30,
            message=lambda: f"an empty assignment after the restart; events {watched.events}",
        )
        ensure_topics(settings, [topic])  # the owner's TopicKeeper puts it back
        producer = make_producer(settings, "recreated")
        delivered: list[Any] = []
        producer.produce(topic, b"after", key=b"k", on_delivery=lambda e, _m: delivered.append(e))
        producer.flush(10)
        assert delivered == [None]

        def consumed() -> bool:
            watched.poll()
            return b"after" in watched.values

        wait_until(
            consumed,
            timeout=20,
            message=lambda: (
                f"the record produced to the topic created again; events {watched.events}"
            ),
        )
    finally:
        watched.consumer.close()
