"""Composition root of the sender: settings -> adapters -> scheduler -> consumer loop.

`SenderReplica` is the whole process minus signals and logging set-up, so tests and
benchmarks can run several replicas in one process.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import sys

from notifier.common.config import ConfigError
from notifier.common.consumer_lag import lag_overrides
from notifier.common.db import Database
from notifier.common.kafka import TopicKeeper, ensure_topics, make_consumer, make_producer
from notifier.common.lifecycle import StopFlag, freeze_heap, install_signal_handlers
from notifier.common.logging import setup_logging
from notifier.common.metrics import start_metrics_server
from notifier.sender.classify import RetryPolicy
from notifier.sender.consumer import DoneQueue, SendConsumer
from notifier.sender.events import KafkaPublisher, KafkaResultSink
from notifier.sender.metrics import CONSUMER_LAG
from notifier.sender.pacer import SlotPacer
from notifier.sender.rate_slots import PostgresSlotLeaser
from notifier.sender.ratelimit import RecipientBuckets, late_tolerance, slot_spacing
from notifier.sender.recent_sends import RecentSends
from notifier.sender.recipients import RecipientQueues
from notifier.sender.reconcile_store import ReconcileStore
from notifier.sender.reconciler import Reconciler, ReconcileSettings, fetch_concurrency
from notifier.sender.scheduler import Scheduler
from notifier.sender.service import SendService
from notifier.sender.settings import SenderSettings
from notifier.sender.status_store import MessageStatusStore
from notifier.sender.twilio_client import TwilioMessages

log = logging.getLogger(__name__)

# Seconds between GIL switches in the sender (Python's default is 0.005); see main().
_SWITCH_INTERVAL = 0.001


class SenderReplica:
    """One replica's parts, built from settings; `run()` blocks until the stop flag is set."""

    def __init__(self, settings: SenderSettings, stop: StopFlag) -> None:
        topics = settings.kafka.topics
        # The outbound topic is the gateway's: when it has to create it again, the broker
        # lost its data and the gateway republishes what is still QUEUED. Created here, it
        # would hide that loss; the consumer waits for it instead.
        names = [topics.events, topics.dead_letter]
        ensure_topics(settings.kafka, names)
        self._topic_keeper = TopicKeeper(settings.kafka, names)
        client_id = f"notifier-sender-{socket.gethostname()}-{os.getpid()}"
        self._settings = settings
        self._db = Database(settings.database.url, "notifier-sender", max_connections=8)
        producer = make_producer(settings.kafka, client_id)
        done: DoneQueue = queue.SimpleQueue()
        self._spacing = slot_spacing(settings.sender_mps, settings.rate_safety_factor)
        pacer = SlotPacer(
            PostgresSlotLeaser(self._db, settings.twilio.sender, self._spacing),
            self._spacing,
            settings.lease_run_seconds,
            late_tolerance(settings.rate_safety_factor),
        )
        # Connections for every sending worker and every GET of the reconciler.
        twilio = TwilioMessages(
            settings.twilio,
            pool_size=settings.concurrency
            + fetch_concurrency(settings.reconcile_fetches_per_second),
        )
        results = KafkaResultSink(KafkaPublisher(producer), topics.events)
        service = SendService(
            twilio,
            MessageStatusStore(self._db),
            results,
            settings.public_webhook_url,
            recent=RecentSends(settings.recent_sends_capacity, settings.recent_sends_seconds),
        )
        self._reconciler = _reconciler(settings, twilio, results)
        self._scheduler = Scheduler(
            service,
            pacer,
            RecipientQueues(RecipientBuckets(settings.pair_interval_seconds, settings.pair_burst)),
            lambda partition, offset: done.put((partition, offset)),
            concurrency=settings.concurrency,
            retry=RetryPolicy(
                settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds
            ),
        )
        self.consumer = SendConsumer(
            make_consumer(
                settings.kafka, settings.group_id, client_id, lag_overrides(CONSUMER_LAG)
            ),
            producer,
            self._scheduler,
            done,
            topics,
            stop,
            max_buffered_per_partition=settings.max_buffered_per_partition,
            grace_seconds=settings.grace_seconds,
        )

    def run(self) -> None:
        settings = self._settings
        metrics_server = start_metrics_server(settings.metrics_port, self.consumer.healthy)
        try:
            self._topic_keeper.start()
            self._scheduler.start()
            if self._reconciler is not None:
                self._reconciler.start()
            log.info(
                "sender started",
                extra={
                    "topic": settings.kafka.topics.outbound,
                    "group_id": settings.group_id,
                    "sender_mps": settings.sender_mps,
                    "slot_spacing_ms": round(self._spacing * 1000, 3),
                    "concurrency": settings.concurrency,
                    "database": self._db.dsn_for_logs,
                },
            )
            self.consumer.run()
        finally:
            if self._reconciler is not None:
                self._reconciler.stop()
            self._topic_keeper.stop()
            metrics_server.stop()
            self._db.close()


def _reconciler(
    settings: SenderSettings, twilio: TwilioMessages, results: KafkaResultSink
) -> Reconciler | None:
    if settings.reconcile_interval_seconds <= 0:
        return None
    store = ReconcileStore(
        settings.database.url, settings.reconcile_after_seconds, settings.reconcile_max_age_seconds
    )
    return Reconciler(
        store,
        twilio,
        results,
        ReconcileSettings(
            settings.reconcile_interval_seconds,
            settings.reconcile_after_seconds,
            settings.reconcile_batch,
            settings.reconcile_fetches_per_second,
            fetch_concurrency(settings.reconcile_fetches_per_second),
        ),
    )


def main() -> None:
    try:
        settings = SenderSettings.from_env(os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    setup_logging("sender", settings.log_level)
    # A worker whose call was let go at its slot must reach the socket write at once; with
    # Python's default 5 ms switch interval another thread's Python can hold the GIL that
    # long in between, which eats the pacing's slack (see the README, "Why any one-second
    # window stays <= MPS"). The sender's threads mostly wait, so switching costs little.
    sys.setswitchinterval(_SWITCH_INTERVAL)
    stop = install_signal_handlers()
    replica = SenderReplica(settings, stop)
    # Frozen once the replica's clients exist: they live as long as the process.
    freeze_heap()
    replica.run()


if __name__ == "__main__":
    main()
