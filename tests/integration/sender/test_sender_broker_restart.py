"""The broker loses everything (an in-memory Tansu restarted): the sender waits for the
outbound topic to come back, reads it from the start, and a command republished for a
message it already sent is reported again (same SID), never sent twice."""

from __future__ import annotations

from collections import Counter

import pytest

from notifier.common.domain.status import MessageStatus
from notifier.devstack.tansu import TansuBroker, create_topics
from notifier.twilio_emulator import EmulatorServer
from tests.fixtures.waiting import random_suffix, wait_until
from tests.integration.sender.sender_support import (
    Commands,
    Rows,
    RunningSender,
    SenderTopics,
    TopicReader,
    random_number,
    sender_settings,
)

pytestmark = pytest.mark.integration

BEFORE, AFTER = 20, 20


def test_after_a_broker_restart_the_sender_resumes_and_sends_nothing_twice(
    database_url: str, kafka_broker: TansuBroker, emulator: EmulatorServer
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    suffix = random_suffix()
    topics = SenderTopics(f"restart.out.{suffix}", f"restart.events.{suffix}",
                          f"restart.dlq.{suffix}")  # fmt: skip
    create_topics(bootstrap, [topics.outbound], 4)  # the gateway's job
    settings = sender_settings(
        database_url, bootstrap, topics, emulator.url, random_number("+1415"),
        reconcile_interval_seconds=0,
    )  # fmt: skip
    rows = Rows(database_url)
    first = rows.insert_many([random_number() for _ in range(BEFORE)])
    sender = RunningSender(settings)
    try:
        sender.wait_assigned()
        Commands(bootstrap, topics.outbound).send(*first)
        wait_until(lambda: emulator.stats().accepted == BEFORE, timeout=30,
                   message=lambda: f"{BEFORE} sends, have {emulator.stats().accepted}")  # fmt: skip
        sids = {int(m.mid or 0): m.sid for m in emulator.messages()}

        kafka_broker.restart()  # topics, records, committed offsets: all gone
        # What the gateway does when it finds its topic missing: create it again and
        # republish every message still QUEUED (no recorder here: all of them are).
        create_topics(bootstrap, [topics.outbound], 4)
        second = rows.insert_many([random_number() for _ in range(AFTER)])
        Commands(bootstrap, topics.outbound).send(*first, *second)

        wait_until(lambda: emulator.stats().accepted >= BEFORE + AFTER, timeout=60,
                   message=lambda: f"{AFTER} more, have {emulator.stats().accepted}")  # fmt: skip
        # The events topic comes back through the sender's own TopicKeeper (every 5 s).
        events = TopicReader(bootstrap, topics.events, partitions=1)
        try:

            def reported() -> dict[int, list[str | None]]:
                seen: dict[int, list[str | None]] = {}
                for e in events.events():
                    if e.status is MessageStatus.SENDING and e.message_id is not None:
                        seen.setdefault(int(e.message_id), []).append(e.twilio_sid)
                return seen if len(seen) == BEFORE + AFTER else {}

            after_restart = wait_until(reported, timeout=120, message="SENDING for every message")
        finally:
            events.close()
    finally:
        sender.stop()

    sends = Counter(m.mid for m in emulator.messages())
    assert len(sends) == BEFORE + AFTER and set(sends.values()) == {1}, "a message went twice"
    # Each message sent before the restart was reported again with the SID it got then
    # (a SENDING event the broker lost mid-flight may also be produced again: the
    # recorder applies duplicates once).
    for command in first:
        reported_sids = set(after_restart[int(command.message_id)])
        assert reported_sids == {sids[int(command.message_id)]}, command.message_id
