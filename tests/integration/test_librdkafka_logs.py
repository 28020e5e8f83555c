"""librdkafka's log lines from our admin clients reach the JSON logs through logging.

A raw line such as `%6|...|BGQUEUE|notifier-admin#producer-1|...` (an admin client torn
down after ensure_topics) breaks every log pipeline that expects one JSON object per
line, and it did break tests/e2e/test_log_hygiene.py. A consumer-only property makes an
admin client log a configuration warning at creation, which shows where its lines go.
"""

from __future__ import annotations

import logging

import pytest

from notifier.common.config import KafkaSettings
from notifier.common.kafka import TopicKeeper, ensure_topics
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.waiting import random_suffix, wait_until

# Meaningless to an admin client: librdkafka warns (CONFWARN) when it gets it.
CONSUMER_ONLY = {"fetch.wait.max.ms": "10"}


# The admin clients this test makes (ensure_topics, TopicKeeper).
_ADMIN_CLIENTS = ("notifier-admin#", "notifier-topic-keeper#")


def _raw_admin_lines(text: str) -> list[str]:
    """Raw librdkafka lines (`%3|time|FAC|client#type-n| ...`) from our admin clients.

    Producers and consumers still print raw lines by design (kafka.py, LIBRDKAFKA_LOGGER):
    one left by an earlier test of this process, whose broker is gone, may print meanwhile.
    """
    lines = [line for line in text.splitlines() if line.startswith("%") and "|" in line]
    return [line for line in lines if line.split("|")[3].startswith(_ADMIN_CLIENTS)]


def _librdkafka_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "librdkafka"]


def test_admin_clients_log_through_logging(
    kafka_broker: TansuBroker, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="librdkafka")
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, extra=CONSUMER_ONLY)

    assert ensure_topics(settings, [f"logs.{random_suffix()}"])
    lines = _librdkafka_records(caplog)
    assert any("consumer property" in line and "notifier-admin" in line for line in lines), lines

    caplog.clear()
    keeper = TopicKeeper(settings, [f"logs.{random_suffix()}"], interval=0.05).start()
    try:
        wait_until(lambda: any("notifier-topic-keeper" in line
                               for line in _librdkafka_records(caplog)),
                   timeout=10, message="the topic keeper's admin client logging")  # fmt: skip
    finally:
        keeper.stop()

    raw = _raw_admin_lines(capfd.readouterr().err)
    assert not raw, raw
