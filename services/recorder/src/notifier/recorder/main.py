"""The recorder's composition root: read settings, wire the loop, run until SIGTERM.

No logic lives here; see consumer.py for the loop and its delivery guarantee.
"""

from __future__ import annotations

import logging
import os
import sys

from notifier.common.config import ConfigError
from notifier.common.consumer_lag import lag_overrides
from notifier.common.db import Database
from notifier.common.kafka import TopicKeeper, ensure_topics, make_consumer, make_producer
from notifier.common.lifecycle import (
    GraceWatchdog,
    freeze_heap,
    install_signal_handlers,
    run_in_worker_thread,
)
from notifier.common.logging import setup_logging
from notifier.common.metrics import start_metrics_server
from notifier.recorder.applier import BatchApplier
from notifier.recorder.batcher import BatchPolicy
from notifier.recorder.consumer import LoopConfig, RecorderLoop
from notifier.recorder.deadletter import DeadLetters
from notifier.recorder.health import LoopHealth
from notifier.recorder.metrics import RecorderMetrics
from notifier.recorder.report import BatchReport
from notifier.recorder.settings import RecorderSettings
from notifier.recorder.store import EventStore

SERVICE = "notifier-recorder"
log = logging.getLogger("notifier.recorder")


def main() -> None:
    try:
        settings = RecorderSettings.from_env(os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging("recorder", settings.log_level)
    stop = install_signal_handlers()
    topics = settings.kafka.topics
    ensure_topics(settings.kafka, [topics.events, topics.dead_letter])
    topic_keeper = TopicKeeper(settings.kafka, [topics.events, topics.dead_letter]).start()
    health = LoopHealth(max_silence=30.0)
    metrics_server = start_metrics_server(settings.metrics_port, health_check=health.check)
    db = Database(settings.database.url, SERVICE, max_connections=2)
    metrics = RecorderMetrics()
    producer = make_producer(settings.kafka, SERVICE)
    consumer = make_consumer(
        settings.kafka, settings.group_id, SERVICE, lag_overrides(metrics.consumer_lag)
    )
    dead_letters = DeadLetters(producer, topics.dead_letter, metrics)
    loop = RecorderLoop(
        consumer,
        BatchApplier(EventStore(db), dead_letters),
        dead_letters,
        BatchReport(metrics),
        LoopConfig(
            topic=topics.events,
            policy=BatchPolicy(settings.batch_size, settings.batch_max_age_ms / 1000),
            grace_seconds=settings.grace_seconds,
        ),
        stop,
        health,
    )

    def break_off() -> None:
        loop.abandon()
        cancelled = db.abort()
        log.warning("database statements cancelled at shutdown", extra={"count": cancelled})

    # A statement stuck on a hung PostgreSQL would keep the loop from seeing the stop.
    watchdog = GraceWatchdog(stop, settings.grace_seconds, break_off).start()
    freeze_heap()
    try:
        # Returns once stop is set, the batch applied and offsets committed.
        run_in_worker_thread(loop.run, "recorder-loop")
    finally:
        watchdog.finished()
        topic_keeper.stop()
        producer.flush(5.0)
        db.close()
        metrics_server.stop()


if __name__ == "__main__":
    main()
