"""Producing to Kafka with an acknowledgement callback: result events and dead letters.

A record the broker did not take is produced again, so a command's offset only
becomes committable once what it produced is durable (see `consumer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, Message, Producer

from notifier.common.domain.messages import StatusChange
from notifier.common.kafka import RecoveringProducer
from notifier.common.payloads import encode_status_change

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]


class KafkaPublisher:
    """Thread-safe produce; `on_acked` runs in the thread that polls the producer."""

    def __init__(self, producer: Producer | RecoveringProducer) -> None:
        self._producer = producer

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        on_acked: Callable[[], None],
    ) -> None:
        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                on_acked()
                return
            # The idempotent producer already retried for message.timeout.ms; the record
            # is still needed (its offset waits for it), so it goes out again.
            log.warning(
                "produce failed; producing again", extra={"topic": topic, "error": str(error)}
            )
            self.produce(topic, key, value, headers, on_acked)

        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=list(headers or ()), on_delivery=delivered
                )
                return
            except BufferError:
                # The local queue is full: serve acknowledgements to make room.
                self._producer.poll(0.1)


class KafkaResultSink:
    """`ResultSink` on the events topic, keyed by message id like every other event."""

    def __init__(self, publisher: KafkaPublisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic

    def publish(self, change: StatusChange, on_acked: Callable[[], None]) -> None:
        key = str(change.message_id).encode() if change.message_id is not None else None
        self._publisher.produce(self._topic, key, encode_status_change(change), None, on_acked)
