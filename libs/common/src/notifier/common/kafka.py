"""Kafka clients configured the one way this service uses them.

Producers are idempotent with acks=all, so a retried produce never duplicates
or reorders a partition. Consumers use cooperative-sticky rebalancing and
store offsets explicitly only after a record is handled (at-least-once);
librdkafka's auto-commit then commits what was stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from notifier.common.config import KafkaSettings
from notifier.common.errors import TransientError

log = logging.getLogger(__name__)

# Reasons travel with a dead-lettered record in these headers; the value and
# key are the original bytes, so the record can be replayed as it was.
DLQ_REASON_HEADER = "dlq.reason"
DLQ_SOURCE_HEADERS = ("dlq.source.topic", "dlq.source.partition", "dlq.source.offset")


def _base_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        **settings.extra,
    }


def producer_config(
    settings: KafkaSettings, client_id: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    config = {
        **_base_config(settings, client_id),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "none",
        # Give up on a record after 30 s so callers learn the broker is down
        # (the outbox relay republishes it); librdkafka retries inside that.
        "message.timeout.ms": 30_000,
        # Never let a produce create a topic with the broker's default partition
        # count: topics are created by ensure_topics/TopicKeeper with ours.
        "allow.auto.create.topics": False,
    }
    config.update(overrides or {})
    return config


def make_producer(
    settings: KafkaSettings, client_id: str, overrides: Mapping[str, Any] | None = None
) -> Producer:
    return Producer(producer_config(settings, client_id, overrides))


def consumer_config(
    settings: KafkaSettings,
    group_id: str,
    client_id: str,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    config = {
        **_base_config(settings, client_id),
        "group.id": group_id,
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1_000,
        # Offsets are stored by our code after a record is handled, never on poll.
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(1_000, settings.session_timeout_ms // 6),
    }
    config.update(overrides or {})
    return config


def make_consumer(
    settings: KafkaSettings,
    group_id: str,
    client_id: str,
    overrides: Mapping[str, Any] | None = None,
) -> KafkaConsumer:
    return KafkaConsumer(consumer_config(settings, group_id, client_id, overrides))


def ensure_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    partitions: int | None = None,
    admin: AdminClient | None = None,
) -> list[str]:
    """Creates the topics that do not exist yet; returns those it created.

    Run at start-up by every process that uses a topic, and again by its
    TopicKeeper, so that a broker which lost its topics gets them back as
    configured (producers never auto-create them).
    """
    admin = admin or AdminClient(_base_config(settings, "notifier-admin"))
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise TransientError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    wanted = [n for n in dict.fromkeys(names) if n not in existing]
    if not wanted:
        return []
    count = partitions or settings.partitions
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=count, replication_factor=-1) for name in wanted],
        operation_timeout=10,
        request_timeout=15,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
            log.info("topic created", extra={"topic": name, "partitions": count})
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TransientError(f"cannot create topic {name}: {exc}") from exc
    return created


class TopicKeeper:
    """Re-creates a process's topics every `interval` seconds if they went missing.

    A broker that loses its data (a restart of the in-memory dev broker, a
    cluster rebuilt from scratch) comes back without our topics; producers
    wait for them (they may not auto-create), and this puts them back with the
    configured partition count.
    """

    def __init__(self, settings: KafkaSettings, names: Iterable[str], interval: float = 5.0):
        self._settings = settings
        self._names = list(dict.fromkeys(names))
        self._interval = interval
        self._stop = threading.Event()
        self._admin = AdminClient(_base_config(settings, "notifier-topic-keeper"))
        self._thread = threading.Thread(target=self._run, name="topic-keeper", daemon=True)

    def start(self) -> TopicKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops checking; never holds up a shutdown (a check in progress may take 10 s
        against an unreachable broker, and the thread is a daemon)."""
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                created = ensure_topics(self._settings, self._names, admin=self._admin)
            except TransientError as exc:
                log.debug("topics not checked", extra={"reason": str(exc)})
                continue
            if created:
                log.warning("topics were missing and have been created again",
                            extra={"topics": created})  # fmt: skip
