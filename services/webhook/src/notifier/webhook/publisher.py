"""Publishes webhook events to Kafka and waits for the broker's acknowledgement of each.

One KafkaPublisher per gunicorn worker, built after the fork (librdkafka's threads do
not survive one) and flushed when the worker exits. A request thread produces its
record and blocks until that record's delivery report, which a poller thread serves:
the webhook answers 200 only once the broker has the event, so nothing is lost if the
process dies right after. No acknowledgement within the timeout -> TransientError (503).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from notifier.common.config import KafkaSettings
from notifier.common.errors import TransientError
from notifier.common.kafka import RecoveringProducer, producer_config

log = logging.getLogger(__name__)


class _Delivery:
    """The delivery report of one record, handed from the poller to the waiting request."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        self.error = error
        self.done.set()


class KafkaPublisher:
    """Produces to the events topic with an idempotent producer (acks=all).

    `ready()` asks the brokers for the topic's metadata at most once per `ready_ttl`
    seconds, so readiness probes cost nothing on the request path.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        client_id: str,
        timeout: float,
        *,
        ready_ttl: float = 2.0,
        probe_timeout: float = 1.0,
    ) -> None:
        self._topic = settings.topics.events
        self._timeout = timeout
        self._ready_ttl = ready_ttl
        self._probe_timeout = probe_timeout
        overrides: dict[str, Any] = {
            # Every request waits for its own record, so waiting to fill a batch only adds
            # latency; records from concurrent requests still share a produce request.
            "linger.ms": 0,
            # librdkafka gives up on a record when the request does, so a broker outage
            # does not pile up records nobody waits for any more.
            "message.timeout.ms": max(int(timeout * 1000), 100),
            # librdkafka's own log lines go through logging (JSON), served by poll().
            "logger": logging.getLogger("librdkafka"),
        }
        # Replaces itself when the broker may have lost its state (fatal error, all
        # brokers down, a record timed out): see RecoveringProducer.
        self._producer = RecoveringProducer(producer_config(settings, client_id, overrides))
        self._ready = False
        self._ready_until = 0.0
        self._probe_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    @property
    def topic(self) -> str:
        return self._topic

    def publish(self, key: str, value: bytes) -> None:
        """Returns once the broker acknowledged the record; TransientError otherwise."""
        delivery = _Delivery()
        try:
            self._producer.produce(self._topic, value, key.encode(), on_delivery=delivery)
        except BufferError as exc:
            raise TransientError("the Kafka producer's queue is full") from exc
        except KafkaException as exc:
            raise TransientError(f"cannot produce to {self._topic}: {exc}") from exc
        if not delivery.done.wait(self._timeout):
            raise TransientError(f"Kafka did not acknowledge within {self._timeout:g}s")
        if delivery.error is not None:
            raise TransientError(f"Kafka did not acknowledge: {delivery.error.str()}")

    def ready(self) -> bool:
        """Whether a broker answered a metadata request lately (cached for `ready_ttl`)."""
        if time.monotonic() < self._ready_until or not self._probe_lock.acquire(blocking=False):
            return self._ready  # fresh enough, or another probe is on its way
        try:
            try:
                self._producer.list_topics(self._topic, timeout=self._probe_timeout)
                self._ready = True
            except KafkaException:
                self._ready = False
            self._ready_until = time.monotonic() + self._ready_ttl
            return self._ready
        finally:
            self._probe_lock.release()

    def close(self, timeout: float) -> None:
        """Waits up to `timeout` seconds for records still in flight, then stops polling."""
        left = self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout=2)
        if left:
            log.warning("records not acknowledged at exit", extra={"count": left})

    def _poll(self) -> None:
        # Serves delivery reports and logs; returns as soon as one is ready.
        while not self._stop.is_set():
            self._producer.poll(0.1)
