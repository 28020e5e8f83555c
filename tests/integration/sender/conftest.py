"""Fixtures of the sender's integration tests: the emulator, topics, rows and one sender."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.devstack.tansu import create_topics, delete_topics
from notifier.twilio_emulator import EmulatorServer
from tests.fixtures.waiting import random_suffix
from tests.integration.sender.sender_support import (
    Commands,
    Rows,
    RunningSender,
    SenderTopics,
    TopicReader,
    random_number,
    sender_settings,
)

OUTBOUND_PARTITIONS = 3


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str) -> Iterator[SenderTopics]:
    suffix = random_suffix()
    names = SenderTopics(f"sender.out.{suffix}", f"sender.events.{suffix}", f"sender.dlq.{suffix}")
    create_topics(kafka_bootstrap, [names.outbound], OUTBOUND_PARTITIONS)
    create_topics(kafka_bootstrap, [names.events, names.dead_letter], 1)
    yield names
    delete_topics(kafka_bootstrap, [names.outbound, names.events, names.dead_letter])


@pytest.fixture(scope="module")
def rows(database_url: str) -> Rows:
    return Rows(database_url)


@pytest.fixture(scope="module")
def commands(kafka_bootstrap: str, topics: SenderTopics) -> Commands:
    return Commands(kafka_bootstrap, topics.outbound)


@pytest.fixture(scope="module")
def events(kafka_bootstrap: str, topics: SenderTopics) -> Iterator[TopicReader]:
    reader = TopicReader(kafka_bootstrap, topics.events)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def dead_letters(kafka_bootstrap: str, topics: SenderTopics) -> Iterator[TopicReader]:
    reader = TopicReader(kafka_bootstrap, topics.dead_letter)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def sender(
    database_url: str, kafka_bootstrap: str, topics: SenderTopics, emulator: EmulatorServer
) -> Iterator[RunningSender]:
    """One replica for the module, with a short pair interval (0.5 s, burst 1)."""
    settings = sender_settings(
        database_url,
        kafka_bootstrap,
        topics,
        emulator.url,
        random_number("+1415"),
        pair_interval_seconds=0.5,
        pair_burst=1,
    )
    running = RunningSender(settings)
    running.wait_assigned()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def clean_emulator(emulator: EmulatorServer) -> None:
    emulator.reset()
    emulator.configure(mps=0, latency_ms=0, jitter_ms=0)
