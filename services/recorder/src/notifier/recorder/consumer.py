"""The recorder's poll loop: events topic -> batches -> EventSink, offsets after the commit.

Delivery is at-least-once. An event's offset is stored (then committed by
librdkafka's auto-commit, or synchronously on revoke and at shutdown) only after
the database transaction that applied it has committed, or, for an event that
cannot be used, after it went to the dead-letter topic. A crash or rebalance in
between redelivers the batch; the store is idempotent, so applying it again is
harmless. Order within a partition does not matter: the state machine only
moves a status forward, and an opt-out change only replaces an older one (by the
time its message was received), whatever order events are applied in.

Under load the loop is a two-stage pipeline: one batch is applied by the applier
thread (its time is mostly PostgreSQL's) while the loop consumes and decodes the
next; batches are still applied one after the other, in order, and a batch that
fails goes back in front of the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from notifier.common.domain.messages import Event
from notifier.common.errors import TransientError
from notifier.common.lifecycle import StopFlag
from notifier.common.payloads import PayloadError, decode_event
from notifier.recorder.applier import BatchApplier, Pending
from notifier.recorder.batcher import Batcher, BatchPolicy
from notifier.recorder.deadletter import DeadLetters
from notifier.recorder.health import LoopHealth
from notifier.recorder.report import BatchReport
from notifier.recorder.store import ApplyResult

log = logging.getLogger(__name__)

_FIRST_BACKOFF, _MAX_BACKOFF = 0.5, 30.0
# While a batch is being applied, the loop looks at least this often whether it is done
# (to store its offsets and count it) when no record arrives meanwhile.
_IN_FLIGHT_POLL = 0.005
_PartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch the applier thread is applying."""

    items: tuple[Pending, ...]
    started: float
    result: Future[list[ApplyResult]]


@dataclass(frozen=True, slots=True)
class LoopConfig:
    topic: str
    policy: BatchPolicy
    grace_seconds: float = 20.0
    # The longest a poll waits, so a stop request is noticed at least this often.
    max_poll_wait: float = 1.0
    # How long a non-empty batch waits for more records once nothing more is
    # buffered: when the topic is drained the batch is applied at once instead of
    # waiting out max_age, so an unloaded pipeline is fast; under a backlog,
    # consume() returns full batches and this never triggers. None turns it off.
    linger: float | None = 0.005


class RecorderLoop:
    """Consumes events (statuses, inbound messages) and applies them in batches until `stop`."""

    def __init__(
        self,
        consumer: Consumer,
        applier: BatchApplier,
        dead_letters: DeadLetters,
        report: BatchReport,
        config: LoopConfig,
        stop: StopFlag,
        health: LoopHealth | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._applier = applier
        self._dead_letters = dead_letters
        self._report = report
        self._config = config
        self._stop = stop
        self._health = health or LoopHealth()
        self._clock = clock
        self._batch: Batcher[Pending] = Batcher(config.policy)
        self._assigned: set[_PartitionKey] = set()
        self._backoff = _FIRST_BACKOFF
        self._retry_at: float | None = None  # set while PostgreSQL is failing
        # Set when the shutdown overran its grace: what is pending is left for redelivery.
        self._abandoned = threading.Event()
        self._in_flight: _InFlight | None = None
        self._applier_thread = ThreadPoolExecutor(1, thread_name_prefix="recorder-apply")

    def abandon(self) -> None:
        """Gives up applying what is pending (its offsets are not committed, so it is
        redelivered); for a shutdown whose grace ran out while PostgreSQL hangs."""
        self._abandoned.set()

    @property
    def pending(self) -> int:
        """Records consumed and not yet applied (with their offsets not stored)."""
        in_flight = self._in_flight
        return len(self._batch) + (len(in_flight.items) if in_flight else 0)

    def run(self) -> None:
        """Polls until `stop` is set, then applies what is pending, commits and closes."""
        self._consumer.subscribe(
            [self._config.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self._stop.is_set():
                self._poll_once()
        finally:
            try:
                self._shutdown()
            finally:
                self._applier_thread.shutdown(wait=False)

    def _poll_once(self) -> None:
        # An empty batch waits for one record (consume() waits out its whole
        # timeout for a full count); then the rest of the batch is gathered
        # until it is full, due, or the topic is drained (less than asked for
        # arrived within the linger), so no record waits longer than max_age.
        self._collect(block=False)
        room = max(1, self._config.policy.max_size - len(self._batch)) if self._batch else 1
        linger = self._config.linger
        lingering = linger is not None and bool(self._batch) and self._retry_at is None
        wait = self._wait(self._clock())
        if lingering and linger is not None:
            wait = min(wait, linger)
        if self._in_flight is not None:
            wait = min(wait, _IN_FLIGHT_POLL)
        records = self._consumer.consume(room, wait)
        self._health.beat()
        for record in records:
            self._accept(record)
        now = self._clock()
        drained = lingering and len(records) < room
        due = self._batch.is_due(now) or drained
        if not due:
            return
        if self._retry_at is None:
            self._hand_over()
        elif now >= self._retry_at:
            self._flush()

    def _wait(self, now: float) -> float:
        wait = self._config.max_poll_wait
        due_in = self._batch.due_in(now)
        if due_in is not None:
            wait = min(wait, due_in)
        if self._retry_at is not None:
            wait = max(wait, min(self._config.max_poll_wait, self._retry_at - now))
        return max(0.0, wait)

    def _accept(self, record: Any) -> None:
        error = record.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error", extra={"error": str(error)})
            return
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        key, value = record.key(), record.value()
        try:
            event: Event | None = decode_event(value or b"")
        except PayloadError as exc:
            event = None
            self._dead_letters.send(key, value, str(exc), (topic, partition, offset))
        pending = Pending(topic, partition, offset, key, value, event)
        self._batch.add(pending, self._clock())
        if self._retry_at is not None:
            # A partition assigned while PostgreSQL is failing: hold it too.
            self._consumer.pause([TopicPartition(pending.topic, pending.partition)])

    def _hand_over(self) -> None:
        """Starts applying the pending batch in the applier thread, once the batch
        before it is done; the loop goes on consuming meanwhile."""
        if not self._collect(block=True):
            return  # it failed: its events are pending again, in front, and retried
        items = tuple(self._batch.take())
        result = self._applier_thread.submit(self._applier.apply, items)
        self._in_flight = _InFlight(items, self._clock(), result)

    def _collect(self, block: bool) -> bool:
        """Finishes the batch in flight if it is done, or waits for it when `block`.

        True when nothing is in flight any more and the last batch was applied; False
        when it is still running or failed (its events are then pending again).
        """
        flight = self._in_flight
        if flight is None:
            return True
        if not block and not flight.result.done():
            return False
        try:
            results = flight.result.result()
        except Exception as exc:
            self._in_flight = None
            self._batch.put_back(flight.items, self._clock())
            self._apply_failed(exc)
            return False
        self._applied(flight.items, results, self._clock() - flight.started)
        self._in_flight = None  # after the report: pending == 0 means counted too
        return True

    def _flush(self) -> bool:
        """Applies the pending batch now, after the one in flight; True when both are
        done and their offsets stored."""
        if not self._collect(block=True):
            return False
        if not self._batch:
            return True
        items = self._batch.items
        started = self._clock()
        try:
            results = self._applier.apply(items)
        except Exception as exc:
            self._apply_failed(exc)
            return False
        self._applied(items, results, self._clock() - started)
        self._batch.take()
        return True

    def _apply_failed(self, exc: Exception) -> None:
        if isinstance(exc, TransientError):
            self._failed(exc, logging.WARNING, traceback=False)
        else:  # a bug: say so once, keep the loop and the batch
            self._failed(exc, logging.ERROR, traceback=True)

    def _applied(self, items: Sequence[Pending], results: list[ApplyResult], took: float) -> None:
        self._report.applied(results, len(items), took)
        self._dead_letters.confirm(timeout=10.0)
        self._store_offsets(items)
        if self._retry_at is not None:
            self._retry_at, self._backoff = None, _FIRST_BACKOFF
            self._consumer.resume(self._consumer.assignment())
            log.info("PostgreSQL is back; consuming again")

    def _failed(self, exc: Exception, level: int, traceback: bool) -> None:
        self._report.failed()
        self._retry_at = self._clock() + self._backoff
        log.log(
            level,
            "batch not applied; retrying",
            exc_info=traceback,
            extra={"error": str(exc), "events": len(self._batch), "retry_in_s": self._backoff},
        )
        self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
        # Keep polling (so the group keeps us) but take no more records.
        self._consumer.pause(self._consumer.assignment())

    def _store_offsets(self, items: Iterable[Pending]) -> None:
        next_offsets: dict[_PartitionKey, int] = {}
        for p in items:
            key = (p.topic, p.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), p.offset + 1)
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in next_offsets.items()
            if (topic, partition) in self._assigned
        ]
        if offsets:
            try:
                self._consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:
                log.warning("cannot store offsets", extra={"error": str(exc)})

    def _commit(self) -> None:
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("offset commit failed", extra={"error": str(exc)})

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        # Finish what we hold for these partitions while they are still ours (the batch
        # in flight first); if PostgreSQL is failing, let the next owner have them from
        # the last commit.
        self._collect(block=True)
        if any((p.topic, p.partition) in revoked for p in self._batch.items) and not self._flush():
            self._drop(revoked, "revoked")
        self._commit()
        self._assigned -= revoked
        log.info("partitions revoked", extra={"partitions": _names(partitions)})

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._drop(lost, "lost")
        self._assigned -= lost
        log.warning("partitions lost", extra={"partitions": _names(partitions)})

    def _drop(self, partitions: set[_PartitionKey], why: str) -> None:
        dropped = self._batch.discard(lambda p: (p.topic, p.partition) in partitions)
        if dropped:
            log.warning(
                "pending events of partitions we no longer own left for redelivery",
                extra={"events": dropped, "why": why},
            )

    def _shutdown(self) -> None:
        """Stop taking work, apply what is pending within the grace period, commit, close."""
        deadline = self._clock() + self._config.grace_seconds
        self._consumer.pause(self._consumer.assignment())
        while self.pending and not self._abandoned.is_set() and not self._flush():
            wait = min(self._backoff, deadline - self._clock())
            if wait <= 0:
                break
            # Waiting in poll keeps the group membership; paused, nothing new arrives,
            # and anything that does (a new assignment) is left for redelivery.
            self._consumer.consume(1, wait)
        if self.pending:
            log.warning(
                "stopping with events not applied; they will be redelivered",
                extra={"events": self.pending},
            )
            self._batch.take()
        self._commit()
        self._consumer.close()
        log.info("recorder loop stopped")


def _names(partitions: Sequence[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
