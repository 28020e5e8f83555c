"""Kafka clients configured the one way this service uses them.

Producers are idempotent with acks=all, so a retried produce never duplicates
or reorders a partition. Consumers use cooperative-sticky rebalancing and
store offsets explicitly only after a record is handled (at-least-once);
librdkafka's auto-commit then commits what was stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from notifier.common.config import KafkaSettings
from notifier.common.errors import TransientError
from notifier.common.rejoining import RejoiningConsumer

log = logging.getLogger(__name__)

# Reasons travel with a dead-lettered record in these headers; the value and
# key are the original bytes, so the record can be replayed as it was.
DLQ_REASON_HEADER = "dlq.reason"
DLQ_SOURCE_HEADERS = ("dlq.source.topic", "dlq.source.partition", "dlq.source.offset")
# How long a replaced producer gets to hand back the delivery reports of its records.
_DRAIN_SECONDS = 5.0
# After all brokers were down, a producer is replaced at most this often (a producer
# built during the outage gets its id from whichever broker comes back).
_DOWN_REPLACE_SECONDS = 5.0


# librdkafka's own log lines through logging (one JSON line each) instead of raw text
# on stderr; handed over by the client's poll(), so admin clients poll after their
# requests. Only admin clients get it: confluent-kafka mishandles an exception raised
# inside Logger.log (confluent-kafka-python#1708, open: a SystemError later, far from the
# cause), and producers and consumers run our callbacks in the same polls, so they keep
# librdkafka's default (stderr; warnings and errors in practice).
LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")


def _base_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        **settings.extra,
    }


def admin_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    return {**_base_config(settings, client_id), "logger": LIBRDKAFKA_LOGGER}


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
) -> RecoveringProducer:
    return RecoveringProducer(producer_config(settings, client_id, overrides))


def is_fatal(error: object) -> bool:
    """Whether a librdkafka error leaves its producer unusable for good."""
    return isinstance(error, KafkaError) and (error.fatal() or error.code() == KafkaError._FATAL)


def _error_code(error: object) -> int | None:
    return error.code() if isinstance(error, KafkaError) else None


class RecoveringProducer:
    """An idempotent producer that replaces itself when its broker may have lost its state.

    A broker that lost its state (the in-memory dev broker restarted, a cluster rebuilt
    from scratch) no longer knows our producer id. librdkafka then either fails for good
    (a fatal OUT_OF_ORDER_SEQUENCE_NUMBER) or, seen with Tansu, retries "unknown producer
    id" with ever new epochs until each record times out, and every later record too.
    So a fresh producer is built after a fatal error, after all brokers were down (they
    may come back empty; at most once per `_DOWN_REPLACE_SECONDS`), and after a record
    timed out. The old one is purged, so each record it still held gets a failed delivery
    report at once: callers produce it again (it lands on the new producer) or leave it
    to their relay, as for any failure. Only the methods this service uses are offered;
    they are thread-safe.

    A replacement wanted while this thread serves callbacks (a delivery report that
    produces again, as the sender's does) waits until the poll returns, so the old
    producer is never purged and polled from inside one of its own callbacks.
    """

    def __init__(self, config: Mapping[str, Any], factory: Callable[..., Any] = Producer) -> None:
        self._factory = factory
        self._user_error_cb = config.get("error_cb")
        self._config = {**config, "error_cb": self._on_error}
        self._lock = threading.Lock()
        self._replace_wanted: str | None = None
        self._replaced_at = float("-inf")
        self._producer = factory(self._config)
        self.replacements = 0
        self._serving = threading.local()  # .depth: polls of ours this thread is inside

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Callable[[Any, Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        """Produces on the current producer; after a fatal error, on its replacement."""

        def delivered(error: Any, message: Any) -> None:
            if _error_code(error) == KafkaError._MSG_TIMED_OUT:
                self._want_replacement("a record timed out (the producer may be stuck)")
            if on_delivery is not None:
                on_delivery(error, message)

        for attempt in range(2):
            self._replace_if_wanted()
            try:
                # Under the lock, so no record can land on a producer being replaced
                # (it would never be served again); produce() does not block.
                with self._lock:
                    self._producer.produce(
                        topic, value=value, key=key, on_delivery=delivered, **kwargs
                    )
                return
            except KafkaException as exc:
                if attempt == 1 or not is_fatal(exc.args[0]):
                    raise
                self._want_replacement("fatal error")

    def poll(self, timeout: float = 0) -> int:
        """Serves delivery reports; replaces the producer first when that is due."""
        self._replace_if_wanted()
        try:
            with self._serving_callbacks():
                return int(self._producer.poll(timeout))
        except KafkaException as exc:
            if not is_fatal(exc.args[0]):
                raise
            self._want_replacement("fatal error")
            return 0

    def flush(self, timeout: float) -> int:
        self._replace_if_wanted()
        try:
            with self._serving_callbacks():
                return int(self._producer.flush(timeout))
        except KafkaException as exc:
            if not is_fatal(exc.args[0]):
                raise
            self._want_replacement("fatal error")
            self._replace_if_wanted()
            with self._serving_callbacks():
                return int(self._producer.flush(timeout))

    def purge(self) -> None:
        self._producer.purge()

    def close(self) -> None:
        self._producer.close()

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        return self._producer.list_topics(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._producer)

    def _on_error(self, error: KafkaError) -> None:
        if is_fatal(error):
            self._want_replacement("fatal error")
        elif (
            _error_code(error) == KafkaError._ALL_BROKERS_DOWN
            and time.monotonic() - self._replaced_at >= _DOWN_REPLACE_SECONDS
        ):
            self._want_replacement("all brokers were down (they may come back empty)")
        if self._user_error_cb is not None:
            self._user_error_cb(error)

    def _want_replacement(self, reason: str) -> None:
        self._replace_wanted = self._replace_wanted or reason

    def _depth(self) -> int:
        depth: int = getattr(self._serving, "depth", 0)
        return depth

    @contextmanager
    def _serving_callbacks(self) -> Iterator[None]:
        depth = self._depth()
        self._serving.depth = depth + 1
        try:
            yield
        finally:
            self._serving.depth = depth

    def _replace_if_wanted(self) -> None:
        if self._replace_wanted is None or self._depth() > 0:
            return  # nothing to do, or inside a callback: the next call does it
        with self._lock:
            reason, self._replace_wanted = self._replace_wanted, None
            if reason is None:
                return  # another thread replaced it already
            old, self._producer = self._producer, self._factory(self._config)
            self._replaced_at = time.monotonic()
            self.replacements += 1
        log.warning("kafka producer replaced", extra={"reason": reason})
        # Every record the old producer still holds must get its (failed) delivery report,
        # or its caller would wait for it forever: purge them, then serve the reports.
        deadline = time.monotonic() + _DRAIN_SECONDS
        try:
            old.purge()
            with self._serving_callbacks():
                while len(old) > 0 and time.monotonic() < deadline:
                    old.poll(0.05)
        except KafkaException:
            pass  # it is being dropped; its errors are already known
        if len(old) > 0:
            log.error("records of the replaced producer got no delivery report",
                      extra={"count": len(old)})  # fmt: skip


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
        **settings.consumer_extra,
    }
    config.update(overrides or {})
    return config


def make_consumer(
    settings: KafkaSettings,
    group_id: str,
    client_id: str,
    overrides: Mapping[str, Any] | None = None,
) -> KafkaConsumer:
    """A consumer that also rejoins its group when a subscribed topic was created again
    (see `rejoining`)."""
    return RejoiningConsumer(
        consumer_config(settings, group_id, client_id, overrides),
        admin_config(settings, f"{client_id}-topics"),
    )


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
    admin = admin or AdminClient(admin_config(settings, "notifier-admin"))
    try:
        return _create_missing(admin, settings, names, partitions)
    finally:
        admin.poll(0)  # hands librdkafka's log lines to logging


def _create_missing(
    admin: AdminClient, settings: KafkaSettings, names: Iterable[str], partitions: int | None
) -> list[str]:
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

    def __init__(
        self,
        settings: KafkaSettings,
        names: Iterable[str],
        interval: float = 5.0,
        on_created: Callable[[list[str]], None] | None = None,
    ):
        self._settings = settings
        self._names = list(dict.fromkeys(names))
        self._interval = interval
        # Told which topics had to be created again: their records are gone.
        self._on_created = on_created
        self._stop = threading.Event()
        self._admin = AdminClient(admin_config(settings, "notifier-topic-keeper"))
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
                if self._on_created is not None:
                    try:
                        self._on_created(created)
                    except Exception:
                        log.exception("handling recreated topics failed")
