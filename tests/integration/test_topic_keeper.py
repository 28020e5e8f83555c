"""A broker that lost its data gets our topics back, with our partition count.

Producers may not auto-create topics (the broker's default count would differ),
so a record produced while the topic is missing waits until TopicKeeper puts it back.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from notifier.common.config import KafkaSettings
from notifier.common.kafka import TopicKeeper, ensure_topics, make_producer
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.waiting import random_suffix, wait_until


def _partitions(bootstrap: str, topic: str) -> int:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).topics
    return len(topics[topic].partitions) if topic in topics else 0


def test_topics_lost_by_the_broker_come_back_as_configured(kafka_broker: TansuBroker) -> None:
    topic = f"keeper.{random_suffix()}"
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, partitions=6)
    ensure_topics(settings, [topic])
    producer = make_producer(settings, "keeper-test")
    keeper = TopicKeeper(settings, [topic], interval=0.2).start()
    try:
        kafka_broker.restart()  # in memory only: every topic is gone
        reports: list[object] = []
        produced = [0]

        def delivered() -> bool:
            producer.poll(0.1)
            if None in reports:
                return True
            if len(reports) == produced[0]:
                # A producer that replaced itself after the broker went away purges what
                # it held, with a failed report: produce it again, as the relays do.
                producer.produce(topic, b"after the restart", on_delivery=report)
                produced[0] += 1
            return False

        def report(error: object, _message: object) -> None:
            reports.append(error)

        wait_until(delivered, timeout=25, message="the record was never delivered")
        assert reports[-1] is None and reports.count(None) == 1
        # Recreated by the keeper with our count, not auto-created with Tansu's four. A
        # new client's first metadata answer from the restarted broker may still miss the
        # topic for a moment (seen 2 times in 15), so it is asked until it answers.
        counts: list[int] = []
        wait_until(lambda: counts.append(_partitions(kafka_broker.bootstrap_servers, topic))
                   or counts[-1] == 6, timeout=10,
                   message=lambda: f"6 partitions (seen {counts[-5:]})")  # fmt: skip
    finally:
        keeper.stop()
        producer.flush(5)
