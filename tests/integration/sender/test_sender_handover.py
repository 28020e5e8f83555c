"""Graceful shutdown and rebalance: a replica leaving hands its work over, none sent twice.

A stand-in recorder applies the result events, as in production. The leaving replica
commits only offsets below which everything is done; commands it sent above a hole (one
it had not started) come back to its successor, whose status check must skip them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from notifier.common.domain.status import MessageStatus
from notifier.twilio_emulator import EmulatorServer
from tests.fixtures.waiting import wait_until
from tests.integration.sender.sender_support import (
    Commands,
    Rows,
    RunningSender,
    SenderTopics,
    StatusApplier,
    TopicReader,
    random_number,
    sender_settings,
)

pytestmark = pytest.mark.integration

MESSAGES = 60


def test_a_replica_stopping_mid_stream_hands_over_without_duplicates(
    database_url: str,
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    emulator: EmulatorServer,
) -> None:
    topics = SenderTopics(
        topic_factory("handover.out", partitions=4),
        topic_factory("handover.events"),
        topic_factory("handover.dlq"),
    )
    # 20 messages per second, 300 ms each: calls are in flight whenever `first` stops.
    emulator.configure(latency_ms=300)
    settings = sender_settings(
        database_url, kafka_bootstrap, topics, emulator.url, random_number("+1415"), sender_mps=20
    )
    recorder = StatusApplier(kafka_bootstrap, topics.events, database_url)
    first, second = RunningSender(settings), RunningSender(settings)
    try:
        wait_until(
            lambda: first.replica.consumer.assignment and second.replica.consumer.assignment,
            timeout=30,
            message="both replicas assigned",
        )
        commands = Rows(database_url).insert_many([random_number() for _ in range(MESSAGES)])
        Commands(kafka_bootstrap, topics.outbound).send(*commands)
        wait_until(lambda: emulator.stats().accepted >= 15, timeout=10)
        first.stop()  # SIGTERM's path: in-flight calls finish, offsets commit, group left
        assert first.replica.consumer.assignment == frozenset()
        wait_until(
            lambda: emulator.stats().accepted >= MESSAGES,
            timeout=30,
            message=lambda: f"{MESSAGES} sends (have {emulator.stats().accepted})",
        )
        assert len(second.replica.consumer.assignment) == 4
    finally:
        first.stop()
        second.stop()
        recorder.stop()

    stats = emulator.stats()
    assert (stats.accepted, stats.duplicates, stats.throttled) == (MESSAGES, 0, 0)
    events = TopicReader(kafka_bootstrap, topics.events)
    try:
        wait_until(lambda: len(events.events()) >= MESSAGES, timeout=10)
        sent = {e.message_id for e in events.events() if e.status is MessageStatus.SENDING}
    finally:
        events.close()
    assert sent == {c.message_id for c in commands}
