"""librdkafka's own log lines reach our JSON logs through logging, never raw stderr.

A raw line such as `%6|...|BGQUEUE|...` breaks every log pipeline that expects one JSON
object per line. A consumer-only property given to every client makes each of them log
a configuration warning at creation, which shows where its lines go.
"""

from __future__ import annotations

import logging

import pytest

from notifier.common.config import KafkaSettings
from notifier.common.kafka import ensure_topics, make_consumer, make_producer
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.waiting import random_suffix

# Meaningless to producers and admin clients: librdkafka warns (CONFWARN) when they get it.
CONSUMER_ONLY = {"fetch.wait.max.ms": "10"}
# And the reverse for a consumer.
PRODUCER_ONLY = {"linger.ms": "5"}


def _raw_librdkafka_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("%") and "|" in line]


def _librdkafka_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "librdkafka"]


def test_every_client_logs_through_logging(
    kafka_broker: TansuBroker, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="librdkafka")
    servers = kafka_broker.bootstrap_servers

    admin_settings = KafkaSettings(bootstrap_servers=servers, extra=CONSUMER_ONLY)
    assert ensure_topics(admin_settings, [f"logs.{random_suffix()}"])
    admin_lines = _librdkafka_records(caplog)
    assert any("consumer property" in line for line in admin_lines), admin_lines

    caplog.clear()
    producer = make_producer(admin_settings, "logs-test")
    producer.poll(0)
    producer.flush(5)
    producer_lines = _librdkafka_records(caplog)
    assert any("consumer property" in line for line in producer_lines), producer_lines

    caplog.clear()
    consumer_settings = KafkaSettings(bootstrap_servers=servers, extra=PRODUCER_ONLY)
    consumer = make_consumer(consumer_settings, f"logs-{random_suffix()}", "logs-test")
    try:
        consumer.poll(0.1)
    finally:
        consumer.close()
    consumer_lines = _librdkafka_records(caplog)
    assert any("producer property" in line for line in consumer_lines), consumer_lines

    raw = _raw_librdkafka_lines(capfd.readouterr().err)
    assert not raw, raw
