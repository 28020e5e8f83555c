"""The webhook with its real Kafka publisher: events land on the topic, keyed; outages give 503."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from flask.testing import FlaskClient

from notifier.common.domain.status import MessageStatus
from notifier.common.payloads import decode_event
from notifier.common.pb import events_pb2
from notifier.devstack.tansu import TansuBroker
from notifier.webhook.app import create_app
from notifier.webhook.publisher import KafkaPublisher
from tests.fixtures.kafka import consumer_config
from tests.fixtures.waiting import random_suffix, wait_until
from tests.integration.webhook.webhook_support import (
    CUSTOMER,
    SID,
    inbound_params,
    post_signed,
    settings,
    status_params,
)

pytestmark = pytest.mark.integration


def read_records(bootstrap: str, topic: str, count: int, timeout: float = 10) -> list[Message]:
    """The first `count` records of partition 0 of `topic`."""
    consumer = Consumer(consumer_config(bootstrap, f"webhook-test-{random_suffix()}"))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    records: list[Message] = []
    try:

        def enough() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                records.append(message)
            return len(records) >= count

        wait_until(enough, timeout=timeout, message=f"{count} records on {topic}")
    finally:
        consumer.close()
    return records


@pytest.fixture
def kafka_publisher_factory() -> Iterator[Callable[[str, str, float], KafkaPublisher]]:
    made: list[KafkaPublisher] = []

    def make(bootstrap: str, topic: str, timeout: float = 5.0) -> KafkaPublisher:
        kafka = settings(bootstrap=bootstrap, topic=topic).kafka
        made.append(KafkaPublisher(kafka, "webhook-test", timeout, ready_ttl=0.2))
        return made[-1]

    yield make
    for publisher in made:
        publisher.close(2)


def client_for(publisher: KafkaPublisher, timeout: float = 5.0) -> FlaskClient:
    config = settings(topic=publisher.topic, timeout=timeout)
    return create_app(config, publisher).test_client()


def test_callbacks_land_on_the_events_topic_keyed_and_decodable(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    kafka_publisher_factory: Callable[..., KafkaPublisher],
) -> None:
    topic = topic_factory("webhook-events")
    client = client_for(kafka_publisher_factory(kafka_bootstrap, topic))

    assert post_signed(client, "/webhook/status?mid=42", status_params("sent")).status_code == 200
    assert post_signed(client, "/webhook", inbound_params()).status_code == 200

    status, inbound = read_records(kafka_bootstrap, topic, 2)
    assert status.key() == b"42"
    change = decode_event(status.value() or b"")
    assert (change.message_id, change.twilio_sid, change.status) == (42, SID, MessageStatus.SENT)
    assert inbound.key() == CUSTOMER.encode()
    message = events_pb2.Event.FromString(inbound.value() or b"").inbound_message
    assert (message.from_number, message.body, message.opt_out_type) == (CUSTOMER, "STOP", "STOP")


def test_a_down_broker_gets_503_in_time_and_callbacks_are_accepted_once_it_is_back(
    kafka_broker: TansuBroker,
    kafka_publisher_factory: Callable[..., KafkaPublisher],
) -> None:
    topic = f"webhook-outage.{random_suffix()}"
    kafka_broker.create_topics([topic])
    publisher = kafka_publisher_factory(kafka_broker.bootstrap_servers, topic, 1.0)
    client = client_for(publisher, timeout=1.0)

    def accepted(mid: int) -> bool:
        reply = post_signed(client, f"/webhook/status?mid={mid}", status_params("read"))
        assert reply.status_code in (200, 503)
        return reply.status_code == 200

    # A new producer's first record waits for its connection and producer id, which
    # can take longer than the 1 s timeout; 503 until then is the contract.
    wait_until(lambda: accepted(1), timeout=10, message="the first callback accepted")
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5)

    kafka_broker.stop()
    started = time.monotonic()
    reply = post_signed(client, "/webhook/status?mid=2", status_params())
    elapsed = time.monotonic() - started
    assert reply.status_code == 503
    assert reply.headers["Retry-After"]
    assert elapsed < 1.0 + 2.0  # the configured timeout, plus slack for a loaded machine
    assert client.get("/healthz").status_code == 200  # alive: no restart wanted
    wait_until(lambda: client.get("/readyz").status_code == 503, timeout=5)

    # The restarted broker is empty (Tansu keeps nothing), as after losing its disks.
    kafka_broker.start()
    kafka_broker.create_topics([topic])

    wait_until(lambda: accepted(3), timeout=20, message="a callback accepted after the restart")
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout=5)
    # A callback answered 503 may still have landed before its retry did: Twilio's
    # retries make the same duplicates, and the recorder applies them idempotently.
    records = read_records(kafka_broker.bootstrap_servers, topic, 1)
    assert records
    for record in records:
        assert record.key() == b"3"
        assert decode_event(record.value() or b"").status is MessageStatus.READ
