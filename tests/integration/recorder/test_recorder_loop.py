"""The recorder loop against a real broker and PostgreSQL: events in, rows out, offsets after."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from notifier.common.config import KafkaSettings, Topics
from notifier.common.db import Database
from notifier.common.domain.messages import Event, Source, StatusChange
from notifier.common.domain.status import MessageStatus as S
from notifier.common.errors import PermanentError, TransientError
from notifier.common.kafka import DLQ_REASON_HEADER, make_consumer, make_producer
from notifier.common.lifecycle import StopFlag
from notifier.common.payloads import encode_inbound_message, encode_status_change
from notifier.recorder.applier import BatchApplier, EventSink
from notifier.recorder.batcher import BatchPolicy
from notifier.recorder.consumer import LoopConfig, RecorderLoop
from notifier.recorder.deadletter import DeadLetters
from notifier.recorder.metrics import RecorderMetrics
from notifier.recorder.report import BatchReport
from notifier.recorder.store import ApplyResult, EventStore
from tests.fixtures.kafka import consumer_config, producer_config
from tests.fixtures.waiting import random_suffix, wait_until
from tests.integration.recorder.message_rows import (
    Messages,
    event,
    inbound,
    new_number,
    new_sid,
)

pytestmark = pytest.mark.integration

FAST = BatchPolicy(max_size=100, max_age=0.05)


@dataclass
class Topology:
    bootstrap: str
    events: str
    dead_letter: str
    group: str

    @property
    def kafka(self) -> KafkaSettings:
        topics = Topics(events=self.events, dead_letter=self.dead_letter)
        return KafkaSettings(self.bootstrap, topics=topics, session_timeout_ms=6_000)


@pytest.fixture
def topology(kafka_bootstrap: str, topic_factory: Callable[..., str]) -> Topology:
    return Topology(
        kafka_bootstrap,
        events=topic_factory("recorder-events"),
        dead_letter=topic_factory("recorder-dlq"),
        group=f"recorder-test-{random_suffix()}",
    )


@dataclass
class Running:
    loop: RecorderLoop
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        """A counter, once the loop holds nothing: a batch is counted just after its
        commit, so rows may be visible a moment before their events are counted."""
        wait_until(lambda: self.loop.pending == 0, timeout=10, message="the loop settled")
        return self.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def running_recorder(
    topology: Topology,
    database_url: str,
    policy: BatchPolicy = FAST,
    linger: float | None = 0.005,
    sink: Callable[[EventStore], EventSink] = lambda store: store,
) -> Iterator[Running]:
    """The recorder loop on a thread, as main wires it; stopped (gracefully) on exit."""
    db = Database(database_url, "recorder-loop-test", max_connections=2)
    registry = CollectorRegistry()
    metrics = RecorderMetrics(registry)
    producer = make_producer(topology.kafka, "recorder-test")
    stop = StopFlag()
    dead_letters = DeadLetters(producer, topology.dead_letter, metrics)
    loop = RecorderLoop(
        make_consumer(topology.kafka, topology.group, "recorder-test"),
        BatchApplier(sink(EventStore(db)), dead_letters),
        dead_letters,
        BatchReport(metrics),
        LoopConfig(topology.events, policy, grace_seconds=5.0, max_poll_wait=0.1, linger=linger),
        stop,
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="recorder-loop", daemon=True)
    thread.start()
    try:
        yield Running(loop, registry)
    finally:
        stop.set()
        thread.join(timeout=15)
        producer.flush(5)
        db.close()
    assert not thread.is_alive(), "the loop did not stop within its grace period"
    assert not failure, failure


def produce(topology: Topology, values: Sequence[bytes], key: bytes = b"1") -> None:
    producer = Producer(producer_config(topology.bootstrap))
    for value in values:
        producer.produce(topology.events, key=key, value=value)
    assert producer.flush(10) == 0


def produce_changes(topology: Topology, changes: Sequence[StatusChange]) -> None:
    produce(topology, [encode_status_change(c) for c in changes])


def read_dead_letters(topology: Topology, count: int) -> list[Message]:
    """The first `count` records of the dead-letter topic, read without joining a group."""
    dlq = Consumer(consumer_config(topology.bootstrap, f"dlq-reader-{random_suffix()}"))
    dlq.assign([TopicPartition(topology.dead_letter, 0, OFFSET_BEGINNING)])
    received: list[Message] = []

    def enough() -> bool:
        received.extend(dlq.consume(count - len(received), 0.5))
        return len(received) >= count

    try:
        wait_until(enough, timeout=20, message=f"{count} dead-lettered records")
    finally:
        dlq.close()
    return received


def header_map(record: Message) -> dict[str, bytes]:
    headers = record.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {k: v for k, v in pairs if isinstance(v, bytes)}


def committed_offset(topology: Topology) -> int:
    consumer = Consumer(consumer_config(topology.bootstrap, topology.group))
    try:
        [tp] = consumer.committed([TopicPartition(topology.events, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def journeys(ids: Sequence[int]) -> list[StatusChange]:
    """Each message's events as they may arrive: out of order, one twice, SENDING last."""
    changes = []
    for i in ids:
        sid = new_sid()
        changes += [
            event(i, S.DELIVERED, sid=sid, at=3),
            event(i, S.SENT, sid=sid, at=2),
            event(i, S.READ, sid=sid, at=4),
            event(i, S.DELIVERED, sid=sid, at=3),
            event(i, S.SENDING, sid=sid, at=1, source=Source.SENDER),
        ]
    return changes


def all_in(messages: Messages, ids: Sequence[int], status: S) -> Callable[[], bool]:
    return lambda: {r.status for r in messages.rows(ids).values()} == {status}


def test_events_from_kafka_end_in_the_furthest_status_with_history_once(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    ids = messages.create(40)
    produce_changes(topology, journeys(ids))
    with running_recorder(topology, database_url) as recorder:
        wait_until(all_in(messages, ids, S.READ), timeout=20, message="every message READ")
        assert messages.history_rows(ids) == 4 * len(ids)
        assert all(r.twilio_sid for r in messages.rows(ids).values())
        applied = recorder.metric(
            "notifier_recorder_events_applied_total", status="DELIVERED", source="twilio"
        )
        assert applied == 2 * len(ids)
        assert recorder.metric("notifier_recorder_batch_size_count") >= 2
    assert committed_offset(topology) == 5 * len(ids)


def test_inbound_messages_from_kafka_are_recorded_once_and_counted(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    phone = new_number()
    messages.create_to(phone, order_id="ORD-55", customer_id="CUST-5")
    reply, stop = inbound(phone, "Is it coming today?", at=1), inbound(phone, "STOP", at=2)
    records = [encode_inbound_message(m) for m in (reply, stop, reply)]  # one redelivered
    produce(topology, records, key=phone.encode())
    with running_recorder(topology, database_url) as recorder:
        wait_until(lambda: messages.opt_out(phone) == (True, "STOP"), timeout=20,
                   message="the opt-out recorded")  # fmt: skip
        assert recorder.metric("notifier_recorder_inbound_recorded_total") == 2
        assert recorder.metric("notifier_recorder_opt_outs_total", change="opt_out") == 1
    rows = messages.inbound_rows(phone)
    assert [(r["body"], r["order_id"], r["customer_id"]) for r in rows] == [
        ("Is it coming today?", "ORD-55", "CUST-5"),
        ("STOP", "ORD-55", "CUST-5"),
    ]
    assert committed_offset(topology) == 3


class RejectingSink:
    """The real store behind a PostgreSQL that rejects every batch holding one message's events."""

    def __init__(self, store: EventStore, poison: int) -> None:
        self._store = store
        self._poison = poison

    def apply(self, changes: Sequence[Event]) -> ApplyResult:
        if any(isinstance(c, StatusChange) and c.message_id == self._poison for c in changes):
            raise PermanentError("value too long for type character varying(34)")
        return self._store.apply(changes)


def test_unusable_events_go_to_the_dead_letter_topic_and_the_loop_goes_on(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    good, poison = messages.create(2)
    produce(topology, [b"\xff\x00 not protobuf", b""], key=b"garbage")
    produce_changes(topology, [event(poison, S.SENT), event(good, S.SENT)])

    def sink(store: EventStore) -> EventSink:
        return RejectingSink(store, poison)

    with running_recorder(topology, database_url, sink=sink) as recorder:
        wait_until(all_in(messages, [good], S.SENT), timeout=20, message="the good event applied")
        assert recorder.metric("notifier_recorder_dead_lettered_total") == 3
    assert messages.row(poison).status is S.QUEUED

    received = read_dead_letters(topology, count=3)
    assert [r.value() or b"" for r in received[:2]] == [b"\xff\x00 not protobuf", b""]
    headers = [header_map(r) for r in received]
    assert headers[0][DLQ_REASON_HEADER].startswith(b"not an Event")
    assert headers[0]["dlq.source.topic"] == topology.events.encode()
    assert (headers[0]["dlq.source.partition"], headers[0]["dlq.source.offset"]) == (b"0", b"0")
    assert headers[1][DLQ_REASON_HEADER] == b"Event carries no payload"
    assert headers[2][DLQ_REASON_HEADER].startswith(b"rejected by PostgreSQL")
    assert headers[2]["dlq.source.offset"] == b"2"
    assert received[2].value() == encode_status_change(event(poison, S.SENT))
    assert committed_offset(topology) == 4


def test_a_restart_resumes_after_the_commit_and_redelivered_events_change_nothing(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    first, second = messages.create(10), messages.create(10)
    first_events = journeys(first)
    produce_changes(topology, first_events)
    with running_recorder(topology, database_url):
        wait_until(all_in(messages, first, S.READ), timeout=20, message="first messages READ")
    assert committed_offset(topology) == len(first_events)
    before = messages.rows(first)

    # The same events again, as a redelivery after a crash would bring them, then new ones.
    produce_changes(topology, [*first_events, *journeys(second)])
    with running_recorder(topology, database_url) as recorder:
        wait_until(all_in(messages, second, S.READ), timeout=20, message="second messages READ")
        # Each READ once per message: the events before the commit were not consumed again.
        read = recorder.metric(
            "notifier_recorder_events_applied_total", status="READ", source="twilio"
        )
        assert read == len(first) + len(second)
    assert committed_offset(topology) == 3 * len(first_events)
    assert messages.rows(first) == before
    assert messages.history_rows(first + second) == 4 * 20


class FlakySink:
    """The real store behind a PostgreSQL that is down for the first `failures` batches."""

    def __init__(self, store: EventStore, failures: int) -> None:
        self._store = store
        self.failures = failures
        self.calls = 0

    def apply(self, changes: Sequence[Event]) -> ApplyResult:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise TransientError("PostgreSQL unavailable: connection refused")
        return self._store.apply(changes)


def test_a_database_outage_holds_the_batch_and_retries_until_it_applies(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    ids = messages.create(5)
    produce_changes(topology, journeys(ids))
    flaky: list[FlakySink] = []

    def sink(store: EventStore) -> EventSink:
        flaky.append(FlakySink(store, failures=2))
        return flaky[0]

    with running_recorder(topology, database_url, sink=sink) as recorder:
        wait_until(lambda: flaky[0].calls >= 1, timeout=20, message="a first attempt")
        assert committed_offset(topology) < 0  # nothing stored while the batch fails
        wait_until(all_in(messages, ids, S.READ), timeout=20, message="the retried batch")
        assert recorder.metric("notifier_recorder_db_errors_total") == 2
        produce_changes(topology, [event(ids[0], S.FAILED, code=1)])  # consuming resumed
        wait_until(all_in(messages, ids[:1], S.FAILED), timeout=10)
    assert committed_offset(topology) == 5 * len(ids) + 1


def test_stopping_applies_the_pending_batch_and_commits_it(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    ids = messages.create(3)
    changes = journeys(ids)
    produce_changes(topology, changes)
    never_due = BatchPolicy(max_size=10_000, max_age=3_600)
    with running_recorder(topology, database_url, policy=never_due, linger=None) as recorder:
        wait_until(lambda: recorder.loop.pending == len(changes), timeout=20)
        assert messages.rows(ids)[ids[0]].status is S.QUEUED
    # Leaving the block sets the stop flag: the loop applies, commits and closes.
    assert {r.status for r in messages.rows(ids).values()} == {S.READ}
    assert committed_offset(topology) == len(changes)


def test_a_rebalance_applies_what_is_pending_for_the_partitions_given_away(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    database_url: str,
    messages: Messages,
) -> None:
    topology = Topology(
        kafka_bootstrap,
        events=topic_factory("recorder-events", partitions=2),
        dead_letter=topic_factory("recorder-dlq"),
        group=f"recorder-test-{random_suffix()}",
    )
    ids = messages.create(6)
    producer = Producer(producer_config(topology.bootstrap))
    for n, change in enumerate(event(i, S.DELIVERED) for i in ids):
        producer.produce(topology.events, encode_status_change(change), partition=n % 2)
    assert producer.flush(10) == 0
    never_due = BatchPolicy(max_size=10_000, max_age=3_600)
    with running_recorder(topology, database_url, policy=never_due, linger=None) as first:
        wait_until(lambda: first.loop.pending == len(ids), timeout=20)
        with running_recorder(topology, database_url, policy=never_due, linger=None):
            # The first recorder gives one partition to the second and, before
            # letting it go, applies its batch (though not due) and commits it.
            wait_until(
                all_in(messages, ids, S.DELIVERED),
                timeout=20,
                message="the pending batch applied on revoke",
            )
            assert first.loop.pending == 0
            assert sum(committed_offsets(topology, partitions=2)) == len(ids)
    del producer


def committed_offsets(topology: Topology, partitions: int) -> list[int]:
    consumer = Consumer(consumer_config(topology.bootstrap, topology.group))
    try:
        tps = [TopicPartition(topology.events, p) for p in range(partitions)]
        return [tp.offset for tp in consumer.committed(tps, timeout=10)]
    finally:
        consumer.close()


def test_an_unloaded_recorder_applies_an_event_without_waiting_out_the_batch_age(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    database_url: str,
    messages: Messages,
) -> None:
    topology = Topology(
        kafka_bootstrap,
        events=topic_factory("recorder-events"),
        dead_letter=topic_factory("recorder-dlq"),
        group=f"recorder-test-{random_suffix()}",
    )
    [message_id] = messages.create(1)
    # A batch that would wait an hour for company: once the topic is drained, the
    # linger applies it anyway.
    patient = BatchPolicy(max_size=10_000, max_age=3_600)
    with running_recorder(topology, database_url, policy=patient) as recorder:
        wait_until(lambda: recorder.loop.pending == 0, timeout=20)
        producer = Producer(producer_config(topology.bootstrap))
        producer.produce(topology.events, encode_status_change(event(message_id, S.SENT)))
        assert producer.flush(10) == 0
        wait_until(all_in(messages, [message_id], S.SENT), timeout=10,
                   message="the lone event was held back by the batch age")  # fmt: skip


class GatedSink:
    """The real store, holding its first batch until `release` is set; records whether
    two batches were ever applied at once."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.most_at_once = 0
        self._active = 0
        self._lock = threading.Lock()

    def apply(self, events: Sequence[Event]) -> ApplyResult:
        with self._lock:
            self._active += 1
            self.most_at_once = max(self.most_at_once, self._active)
        try:
            self.entered.set()
            self.release.wait(20)
            self.batches.append(len(events))
            return self._store.apply(events)
        finally:
            with self._lock:
                self._active -= 1


def test_the_next_batch_is_gathered_while_one_is_applied_and_batches_apply_in_turn(
    topology: Topology, database_url: str, messages: Messages
) -> None:
    first, second = messages.create(4), messages.create(4)
    gated: list[GatedSink] = []

    def sink(store: EventStore) -> EventSink:
        gated.append(GatedSink(store))
        return gated[0]

    with running_recorder(topology, database_url, sink=sink) as recorder:
        produce_changes(topology, [event(i, S.SENT) for i in first])
        wait_until(gated[0].entered.is_set, timeout=20, message="the first batch applying")
        # While the first batch is held, the loop keeps consuming: the next one waits.
        produce_changes(topology, [event(i, S.DELIVERED) for i in second])
        wait_until(lambda: recorder.loop.pending == len(first) + len(second), timeout=20,
                   message="the second batch gathered while the first was applied")  # fmt: skip
        assert committed_offset(topology) < 0  # nothing stored while the first is held
        gated[0].release.set()
        wait_until(all_in(messages, second, S.DELIVERED), timeout=20)
        assert all_in(messages, first, S.SENT)()
        assert sum(gated[0].batches) == len(first) + len(second)
        wait_until(lambda: recorder.loop.pending == 0, timeout=10)
    assert gated[0].most_at_once == 1
    assert committed_offset(topology) == len(first) + len(second)
