"""Hands events the recorder cannot use to the dead-letter topic, as they were.

The key and value are the original bytes and the reason and source position
travel in headers (names from notifier.common.kafka), so a record can be
inspected and replayed. Owns no decision about *what* is dead-lettered.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, Producer

from notifier.common.kafka import DLQ_REASON_HEADER, DLQ_SOURCE_HEADERS, RecoveringProducer
from notifier.recorder.metrics import RecorderMetrics

log = logging.getLogger(__name__)


class DeadLetters:
    """Produces to the dead-letter topic; `confirm()` waits until the broker has them all."""

    def __init__(
        self, producer: Producer | RecoveringProducer, topic: str, metrics: RecorderMetrics
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._unconfirmed = 0
        # send() is called by the loop (undecodable records) and by the applier thread
        # (records PostgreSQL rejects) while the loop gathers the next batch.
        self._lock = threading.Lock()

    def send(
        self,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        source: tuple[str, int, int],
    ) -> None:
        topic, partition, offset = source
        headers = [
            (DLQ_REASON_HEADER, reason.encode()),
            *zip(
                DLQ_SOURCE_HEADERS, (topic.encode(), b"%d" % partition, b"%d" % offset), strict=True
            ),
        ]
        try:
            self._produce(key, value, headers)
        except BufferError:
            # The local queue is full: let it drain once, then try again.
            self._producer.flush(5.0)
            self._produce(key, value, headers)
        with self._lock:
            self._unconfirmed += 1
        self._metrics.dead_lettered.inc()
        log.warning(
            "event dead-lettered",
            extra={"topic": topic, "partition": partition, "offset": offset, "reason": reason},
        )

    def _produce(self, key: bytes | None, value: bytes | None, headers: list[Any]) -> None:
        self._producer.produce(
            self._topic, key=key, value=value, headers=headers, on_delivery=self._delivered
        )
        self._producer.poll(0)

    def confirm(self, timeout: float) -> bool:
        """Waits for every record sent so far; False if some are still unconfirmed.

        Called before the offsets of a batch are stored, so that a record is
        only skipped once the dead-letter topic holds it.
        """
        with self._lock:
            sent = self._unconfirmed
        if sent == 0:
            return True
        remaining = int(self._producer.flush(timeout))
        if remaining:
            log.error(
                "dead-letter records not confirmed by the broker",
                extra={"topic": self._topic, "pending": remaining},
            )
            return False
        with self._lock:
            self._unconfirmed -= sent  # those sent meanwhile wait for the next confirm
        return True

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            # Its source offset may be committed anyway: the log keeps where it was.
            source = {k: v.decode(errors="replace") for k, v in message.headers() or []}
            log.error(
                "dead-letter record lost",
                extra={"topic": self._topic, "error": str(error), "source": source},
            )
