"""Getting committed send commands onto Kafka: publish right away, relay what was missed.

`Publisher` produces each accepted command (keyed by recipient, idempotent
producer) without waiting; a thread serves delivery reports and another stamps
confirmed ids' `published_at` in batches. `Relay` republishes outbox rows that
stayed unstamped (a crash between commit and produce, a broker outage), so
delivery to Kafka is at-least-once: a command may be published twice, never lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException

from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand
from notifier.common.errors import NotifierError
from notifier.common.lifecycle import StopFlag
from notifier.common.payloads import encode_send_command
from notifier.gateway import metrics
from notifier.gateway.repository import OutboxStore

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[MessageId, bool], None]
_POLL_SECONDS = 0.2
_REPORTS_LINGER_SECONDS = 0.005
_STAMP_EVERY_SECONDS = 0.05
# Beyond this many unstamped confirmations (database down) the oldest are
# dropped: the relay republishes them, which is a duplicate, not a loss.
_MAX_UNSTAMPED = 100_000


class Publisher:
    def __init__(self, producer: Any, topic: str, outbox: OutboxStore) -> None:
        self._producer = producer
        self._topic = topic
        self._outbox = outbox
        self._confirmed: list[MessageId] = []
        self._lock = threading.Lock()
        self._stop = StopFlag()
        self._threads = [
            threading.Thread(target=self._serve_reports, name="kafka-poll", daemon=True),
            threading.Thread(target=self._stamp_confirmed, name="outbox-stamp", daemon=True),
        ]

    def start(self) -> Publisher:
        for thread in self._threads:
            thread.start()
        return self

    def publish(self, command: SendCommand, on_delivery: DeliveryCallback | None = None) -> bool:
        """Hands the command to the producer; False if it could not even be queued.

        By default a confirmed command gets its outbox row stamped; the relay
        passes `on_delivery` to stamp inside its own transaction instead.
        """
        callback = on_delivery or self._confirm
        message_id = command.message_id

        def report(err: Any, _msg: Any) -> None:
            callback(message_id, err is None)

        value = encode_send_command(command)
        for attempt in range(2):
            try:
                self._producer.produce(
                    self._topic, key=command.to.encode(), value=value, on_delivery=report
                )
                return True
            except BufferError:
                # The local queue is full (broker slow or down): give it a moment once.
                if attempt == 0:
                    self._producer.poll(0.05)
            except KafkaException as exc:
                log.warning("produce failed", extra={"message_id": message_id, "error": str(exc)})
                break
        metrics.OUTBOX_PUBLISH_ERRORS.inc()
        return False

    def close(self, timeout: float) -> int:
        """Flushes what is in flight, stamps what was confirmed; returns what was not."""
        remaining: int = self._producer.flush(timeout)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        if remaining:
            # Their rows stay unstamped, so a relay (ours after a restart, or another
            # replica's) publishes them; waiting longer would only delay shutdown.
            log.warning("publishes still unconfirmed at shutdown", extra={"count": remaining})
            self._producer.purge()
        self._producer.close()
        self._stamp_once()
        return remaining

    def _confirm(self, message_id: MessageId, ok: bool) -> None:
        if not ok:
            metrics.OUTBOX_PUBLISH_ERRORS.inc()
            log.debug("publish not confirmed", extra={"message_id": message_id})
            return
        metrics.OUTBOX_PUBLISHED.inc()
        with self._lock:
            self._confirmed.append(message_id)

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            # After serving some reports, let more gather: under load this thread then
            # wakes every few milliseconds instead of once per delivery report.
            if self._producer.poll(_POLL_SECONDS):
                self._stop.wait(_REPORTS_LINGER_SECONDS)

    def _stamp_confirmed(self) -> None:
        # One UPDATE per interval, whatever the load: stamps are cheap to delay
        # (the relay waits OUTBOX_RELAY_AFTER_SECONDS) and commits are not free.
        while not self._stop.wait(_STAMP_EVERY_SECONDS):
            self._stamp_once()

    def _stamp_once(self) -> None:
        with self._lock:
            ids, self._confirmed = self._confirmed, []
        if not ids:
            return
        try:
            self._outbox.mark_published(ids)
        except NotifierError as exc:
            log.warning(
                "stamping published ids failed", extra={"count": len(ids), "error": str(exc)}
            )
            with self._lock:
                self._confirmed = (ids + self._confirmed)[-_MAX_UNSTAMPED:]


class _Acks:
    """Delivery reports for one relay batch; `wait` returns the confirmed ids."""

    def __init__(self, expected: int) -> None:
        self._pending = expected
        self._confirmed: list[MessageId] = []
        self._done = threading.Condition()

    def report(self, message_id: MessageId, ok: bool) -> None:
        with self._done:
            self._pending -= 1
            if ok:
                self._confirmed.append(message_id)
            self._done.notify_all()

    def failed(self) -> None:
        self.report(MessageId(0), False)

    def wait(self, timeout: float, stop: StopFlag) -> list[MessageId]:
        """Until every report is in, `timeout` passes or `stop` is set."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._pending > 0 and not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._done.wait(min(left, _POLL_SECONDS))
            return list(self._confirmed)


class Relay:
    """Every interval, republishes unconfirmed rows older than `after_seconds`."""

    def __init__(
        self,
        publisher: Publisher,
        outbox: OutboxStore,
        interval_seconds: float,
        after_seconds: float,
        batch_size: int = 500,
        ack_timeout_seconds: float = 35.0,
    ) -> None:
        self._publisher = publisher
        self._outbox = outbox
        self._interval = interval_seconds
        self._after = after_seconds
        self._batch_size = batch_size
        # Longer than the producer's message.timeout.ms, so every record of a
        # batch gets its report before the batch's row locks are released.
        self._ack_timeout = ack_timeout_seconds
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> Relay:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stops relaying; waits up to `timeout` (default: a batch's acknowledgements)
        for a pass in progress. False when it is still running."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._ack_timeout + 5 if timeout is None else timeout)
        return not self._thread.is_alive()

    def relay_once(self) -> int:
        """One pass: claim, publish, wait for the broker, stamp. Returns rows confirmed."""
        with self._outbox.claim_unpublished(self._after, self._batch_size) as claim:
            metrics.OUTBOX_BACKLOG.set(len(claim.commands))
            if not claim.commands:
                return 0
            acks = _Acks(len(claim.commands))
            for command in claim.commands:
                if not self._publisher.publish(command, on_delivery=acks.report):
                    acks.failed()
            confirmed = acks.wait(self._ack_timeout, self._stop)
            claim.mark_published(confirmed)
        metrics.OUTBOX_REPUBLISHED.inc(len(confirmed))
        level = logging.INFO if len(confirmed) == len(claim.commands) else logging.WARNING
        log.log(
            level,
            "outbox relay republished",
            extra={"claimed": len(claim.commands), "confirmed": len(confirmed)},
        )
        return len(confirmed)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.relay_once()
            except NotifierError as exc:
                log.warning("outbox relay pass failed", extra={"error": str(exc)})
            except Exception:
                # A bug, not an outage: log it once and keep relaying.
                log.exception("outbox relay pass failed unexpectedly")
