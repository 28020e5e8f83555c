"""The outbound consumer loop: poll -> decode -> schedule; store offsets of finished commands.

Guarantees:
- At-least-once. A command is done when its outcome is durable on the broker (its
  SENDING/FAILED result event or its dead-letter record acknowledged) or it was
  skipped. Per partition only the highest offset below which every command is done
  is stored; librdkafka's auto-commit commits it, and revoke and shutdown commit it
  synchronously. A crash therefore re-delivers every unfinished command, and the
  status check skips those the recorder already moved past QUEUED: a message is sent
  twice only if Twilio accepted it and its SENDING event was not yet recorded.
- Order. The topic is keyed by recipient, so a recipient's commands share a partition;
  the scheduler sends them one at a time in offset order, retries keeping their place.
  Different recipients are independent (one's pair limit or retries never hold another).
- Liveness. A partition with SENDER_MAX_BUFFERED_PER_PARTITION unfinished commands is
  paused and resumed at half; the loop keeps polling, so group membership never lapses.
- Rebalance (cooperative). Revoked partitions lose their commands not yet calling
  Twilio (the new owner gets them again); calls in progress are awaited, bounded, and
  their done offsets committed before the partitions go.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from notifier.common.config import Topics
from notifier.common.kafka import DLQ_REASON_HEADER, DLQ_SOURCE_HEADERS, RecoveringProducer
from notifier.common.lifecycle import StopFlag
from notifier.common.payloads import PayloadError, decode_send_command
from notifier.sender import metrics
from notifier.sender.events import KafkaPublisher
from notifier.sender.offsets import OffsetTracker
from notifier.sender.recipients import PartitionKey
from notifier.sender.scheduler import Scheduler

log = logging.getLogger(__name__)

DoneQueue = queue.SimpleQueue[tuple[PartitionKey, int]]
_POLL_TIMEOUT_SECONDS = 0.1
_POLL_BATCH = 500
HEALTHY_POLL_AGE_SECONDS = 30.0


class SendConsumer:
    """Owns the Kafka consumer: only the thread that calls `run()` touches it."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer | RecoveringProducer,
        scheduler: Scheduler,
        done: DoneQueue,
        topics: Topics,
        stop: StopFlag,
        *,
        max_buffered_per_partition: int,
        grace_seconds: float,
        revoke_wait_seconds: float = 10.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._publisher = KafkaPublisher(producer)
        self._scheduler = scheduler
        self._done = done
        self._topics = topics
        self._stop = stop
        self._max_buffered = max_buffered_per_partition
        self._grace = grace_seconds
        self._revoke_wait = min(revoke_wait_seconds, grace_seconds)
        self._trackers: dict[PartitionKey, OffsetTracker] = {}
        self._paused: set[PartitionKey] = set()
        self._assigned: frozenset[PartitionKey] = frozenset()
        self._last_poll = time.monotonic()

    @property
    def assignment(self) -> frozenset[PartitionKey]:
        """The partitions this replica owns now (readable from any thread)."""
        return self._assigned

    def healthy(self) -> tuple[bool, str]:
        age = time.monotonic() - self._last_poll
        if age > HEALTHY_POLL_AGE_SECONDS:
            return False, f"consumer loop has not polled for {age:.0f}s"
        return True, "ok"

    def run(self) -> None:
        """Consumes until the stop flag is set, then shuts down gracefully."""
        try:
            self._consumer.subscribe(
                [self._topics.outbound],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self._stop.is_set():
                records = self._next_records()
                self._last_poll = time.monotonic()
                metrics.LAST_POLL.set(time.time())
                for record in records:
                    self._handle(record)
                self._producer.poll(0)
                self._store_done()
                self._flow_control()
        finally:
            self._shutdown()

    def _next_records(self) -> list[Message]:
        """What has arrived, at once; when nothing has, waits for the first record only.

        consume(n, timeout) waits out its whole timeout unless n records arrive, which
        would hold a lone command back for the full timeout.
        """
        records = self._consumer.consume(_POLL_BATCH, 0)
        if records:
            return list(records)
        first = self._consumer.consume(1, _POLL_TIMEOUT_SECONDS)
        if not first:
            return []
        return [*first, *self._consumer.consume(_POLL_BATCH - 1, 0)]

    def _handle(self, record: Message) -> None:
        error = record.error()
        if error is not None:
            if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                # The gateway creates (and recreates) the outbound topic; until it does,
                # the subscription waits for it.
                log.info("waiting for the outbound topic", extra={"error": str(error)})
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error", extra={"error": str(error)})
            return
        partition: PartitionKey = (record.topic() or "", record.partition() or 0)
        offset = record.offset() or 0
        tracker = self._trackers.setdefault(partition, OffsetTracker())
        if not tracker.add(offset):
            return  # already in hand or done: a re-fetch after pause/resume
        try:
            command = decode_send_command(record.value() or b"")
        except PayloadError as exc:
            self._dead_letter(record, partition, offset, str(exc))
            return
        self._scheduler.submit(command, partition, offset)

    def _dead_letter(
        self, record: Message, partition: PartitionKey, offset: int, reason: str
    ) -> None:
        topic_header, partition_header, offset_header = DLQ_SOURCE_HEADERS
        headers = [
            (DLQ_REASON_HEADER, reason.encode()),
            (topic_header, partition[0].encode()),
            (partition_header, str(partition[1]).encode()),
            (offset_header, str(offset).encode()),
        ]
        log.warning(
            "undecodable command dead-lettered",
            extra={"topic": partition[0], "partition": partition[1], "offset": offset,
                   "reason": reason},
        )  # fmt: skip
        metrics.DEAD_LETTERED.inc()
        self._publisher.produce(
            self._topics.dead_letter,
            record.key(),
            record.value(),
            headers,
            lambda: self._done.put((partition, offset)),
        )

    def _drain_done(self) -> None:
        while True:
            try:
                partition, offset = self._done.get_nowait()
            except queue.Empty:
                return
            tracker = self._trackers.get(partition)
            if tracker is not None:
                tracker.done(offset)

    def _store_done(self) -> None:
        self._drain_done()
        offsets = []
        for (topic, number), tracker in self._trackers.items():
            position = tracker.to_store()
            if position is not None:
                offsets.append(TopicPartition(topic, number, position))
        if offsets:
            try:
                self._consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:
                log.debug("cannot store offsets", extra={"error": str(exc)})

    def _flow_control(self) -> None:
        buffered = 0
        for key, tracker in self._trackers.items():
            buffered += tracker.pending
            if key in self._paused and tracker.pending <= self._max_buffered // 2:
                self._consumer.resume([TopicPartition(*key)])
                self._paused.discard(key)
            elif key not in self._paused and tracker.pending >= self._max_buffered:
                self._consumer.pause([TopicPartition(*key)])
                self._paused.add(key)
                log.info("partition paused", extra={"topic": key[0], "partition": key[1]})
        metrics.BUFFERED.set(buffered)
        metrics.PAUSED_PARTITIONS.set(len(self._paused))

    def _on_assign(self, _consumer: Consumer, partitions: Sequence[TopicPartition]) -> None:
        for p in partitions:
            self._trackers[(p.topic, p.partition)] = OffsetTracker()
        self._assigned = self._assigned | {(p.topic, p.partition) for p in partitions}
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, _consumer: Consumer, partitions: Sequence[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        running = self._scheduler.revoke(keys, self._revoke_wait)
        self._producer.flush(self._revoke_wait)
        self._store_done()
        self._commit(keys)
        self._forget(keys)
        log.info(
            "partitions revoked",
            extra={"partitions": _names(partitions), "calls_still_running": running},
        )

    def _on_lost(self, _consumer: Consumer, partitions: Sequence[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self._scheduler.revoke(keys, 0.0)
        self._forget(keys)
        log.warning("partitions lost", extra={"partitions": _names(partitions)})

    def _forget(self, keys: Sequence[PartitionKey]) -> None:
        self._assigned = self._assigned - set(keys)
        for key in keys:
            self._trackers.pop(key, None)
            self._paused.discard(key)
        # Calls still running finish without marking an offset done: the partitions may
        # come back to us, even as a recreated topic whose offsets name other commands
        # (the broker lost its data), and a stale "done" would let a commit skip one.
        self._scheduler.disown(keys)
        self._drain_done()

    def _commit(self, keys: Sequence[PartitionKey]) -> None:
        offsets = [
            TopicPartition(key[0], key[1], tracker.position)
            for key in keys
            if (tracker := self._trackers.get(key)) is not None and tracker.position is not None
        ]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("cannot commit offsets", extra={"error": str(exc)})

    def _shutdown(self) -> None:
        running = self._scheduler.stop(self._grace)
        unacked = self._producer.flush(10.0)
        self._store_done()
        self._commit(list(self._trackers))
        # close() revokes every partition: the calls still running had the whole grace
        # period already, so the revoke must not wait for them a second time.
        self._revoke_wait = 0.0
        self._consumer.close()
        log.info(
            "sender consumer stopped",
            extra={"calls_still_running": running, "results_not_acked": unacked},
        )


def _names(partitions: Sequence[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]
