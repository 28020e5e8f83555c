"""Composition root of the gRPC gateway: builds every part, starts it, stops it in order.

`main()` is the `notifier-gateway` entrypoint; `start_gateway()` is what tests
call to run a gateway in-process on port 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from grpc_health.v1 import health

from notifier.common.config import ConfigError
from notifier.common.db import Database
from notifier.common.errors import TransientError
from notifier.common.kafka import TopicKeeper, ensure_topics, make_producer
from notifier.common.lifecycle import StopFlag, freeze_heap, install_signal_handlers
from notifier.common.logging import setup_logging
from notifier.common.metrics import MetricsServer, start_metrics_server
from notifier.gateway.catalog import TemplateCatalog
from notifier.gateway.interceptors import RequestIdFilter
from notifier.gateway.logqueue import QueuedLogging
from notifier.gateway.outbox import Publisher, Relay
from notifier.gateway.repository import MessageStore, OutboxStore
from notifier.gateway.server import build_server, set_serving
from notifier.gateway.service import MessageService
from notifier.gateway.servicer import WhatsAppServicer
from notifier.gateway.settings import FAULT_AFTER_COMMIT, GatewaySettings
from notifier.gateway.writer import AcceptWriter

log = logging.getLogger("notifier.gateway")

_T = TypeVar("_T")
# How long start-up waits for PostgreSQL and Kafka before giving up.
_STARTUP_SECONDS = 60.0
_FLUSH_SECONDS = 10.0
# After cancelling statements at shutdown, how long their threads get to notice.
_ABORT_WAIT_SECONDS = 2.0


@dataclass(slots=True)
class RunningGateway:
    settings: GatewaySettings
    port: int
    metrics_port: int | None
    _server: Any
    _health: health.HealthServicer
    _writer: AcceptWriter
    _relay: Relay
    _publisher: Publisher
    _catalog: TemplateCatalog
    _db: Database
    _metrics: MetricsServer | None
    _topic_keeper: TopicKeeper

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, finish those in flight, flush publishes, close the pool."""
        grace = self.settings.grace_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        self._topic_keeper.stop()
        # Calls past their grace were cancelled, but their statements may still wait on
        # a hung PostgreSQL: wait for them what is left of the grace, then cancel them
        # (rolled back: their callers got no id, so nothing accepted is lost).
        writer_done = self._writer.stop(max(0.0, deadline - time.monotonic()))
        relay_done = self._relay.stop(max(0.0, deadline - time.monotonic()))
        if not (writer_done and relay_done):
            cancelled = self._db.abort()
            log.warning("database statements cancelled at shutdown", extra={"count": cancelled})
            self._writer.stop(_ABORT_WAIT_SECONDS)
            self._relay.stop(_ABORT_WAIT_SECONDS)
        self._publisher.close(_FLUSH_SECONDS)
        self._catalog.stop()
        self._db.close()
        if self._metrics is not None:
            self._metrics.stop()
        log.info("gateway stopped")


def start_gateway(
    settings: GatewaySettings, stop: StopFlag | None = None, serve_metrics: bool = True
) -> RunningGateway:
    """Builds and starts everything; the gateway reports SERVING once it is all up."""
    stop = stop or StopFlag()
    outbound = settings.kafka.topics.outbound
    created = _retry("create the outbound topic", stop, lambda: ensure_topics(
        settings.kafka, [outbound]
    ))  # fmt: skip
    # One connection per gRPC worker (reads), plus the accept writers, relay, stamper
    # and catalog refresh.
    db = Database(settings.database.url, "notifier-gateway", settings.max_workers + 6)
    catalog = TemplateCatalog(db, settings.template_refresh_seconds)
    _retry("load the templates", stop, catalog.start)
    outbox = OutboxStore(db)
    if created:
        _requeue_after_topic_loss(outbox, stop)
    # The outbound topic is ours: when the broker loses it (and its records), it is
    # created again and every message still QUEUED goes out again through the relay.
    topic_keeper = TopicKeeper(
        settings.kafka, [outbound], on_created=lambda _: _requeue_after_topic_loss(outbox, stop)
    )
    producer = make_producer(settings.kafka, client_id="notifier-gateway")
    publisher = Publisher(producer, settings.kafka.topics.outbound, outbox).start()
    relay = Relay(
        publisher, outbox, settings.relay_interval_seconds, settings.relay_after_seconds
    ).start()
    store = MessageStore(db)
    writer = AcceptWriter(store).start()
    service = MessageService(catalog, writer, store, publisher, _fault(settings))
    health_servicer = health.HealthServicer()
    server, port = build_server(settings, WhatsAppServicer(service), health_servicer)
    server.start()
    topic_keeper.start()
    metrics = start_metrics_server(settings.metrics_port) if serve_metrics else None
    set_serving(health_servicer, serving=True)
    log.info(
        "gateway serving",
        extra={
            "port": port,
            "topic": settings.kafka.topics.outbound,
            "database": db.dsn_for_logs,
            "workers": settings.max_workers,
            "transport": settings.tls.mode if settings.tls else "plaintext",
            "health_port": server.health_port,
            "auth": "bearer" if settings.auth_tokens else "off",
        },
    )
    return RunningGateway(
        settings, port, metrics.port if metrics else None, server, health_servicer, writer,
        relay, publisher, catalog, db, metrics, topic_keeper,
    )  # fmt: skip


def main() -> None:
    """`notifier-gateway`: serve until SIGTERM/SIGINT, then shut down gracefully."""
    try:
        settings = GatewaySettings.from_env(os.environ)
    except ConfigError as exc:
        sys.exit(f"notifier-gateway: {exc}")
    setup_logging("gateway", settings.log_level)
    logs = QueuedLogging().install()
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
    stop = install_signal_handlers()
    try:
        gateway = start_gateway(settings, stop)
    except TransientError as exc:
        log.error("gateway could not start", extra={"error": str(exc)})
        sys.exit(1)
    freeze_heap()
    stop.wait()
    gateway.stop()
    logs.close()


def _requeue_after_topic_loss(outbox: OutboxStore, stop: StopFlag) -> None:
    """The outbound topic was (re)created: commands of messages still QUEUED may have
    been lost with the old one, so the relay publishes them again. The sender skips
    those it already sent (status or its memory of recent sends)."""
    try:
        count = _retry("requeue QUEUED messages", stop, outbox.requeue_queued)
    except TransientError as exc:
        log.error("QUEUED messages not requeued after the outbound topic was recreated; "
                  "restart the gateway to retry", extra={"error": str(exc)})  # fmt: skip
        return
    log.log(
        logging.WARNING if count else logging.INFO,
        "outbound topic was created: QUEUED messages requeued for the relay",
        extra={"count": count},
    )


def _fault(settings: GatewaySettings) -> Callable[[], None]:
    if settings.fault_point != FAULT_AFTER_COMMIT:
        return lambda: None

    def kill() -> None:
        log.warning("fault point reached: killing the process", extra={"fault": FAULT_AFTER_COMMIT})
        for handler in logging.getLogger().handlers:
            handler.flush()  # queued log lines would die with the process
        os.kill(os.getpid(), signal.SIGKILL)

    return kill


def _retry(what: str, stop: StopFlag, action: Callable[[], _T]) -> _T:
    """Retries a start-up step while its dependency is unavailable, then gives up."""
    delay, waited = 0.5, 0.0
    while True:
        try:
            return action()
        except TransientError as exc:
            if waited >= _STARTUP_SECONDS or stop.is_set():
                raise TransientError(f"cannot {what}: {exc}") from exc
            log.warning("start-up step failed; retrying", extra={"step": what, "error": str(exc)})
            if stop.wait(delay):
                raise TransientError(f"stopped before being able to {what}") from exc
            waited += delay
            delay = min(delay * 2, 5.0)


if __name__ == "__main__":
    main()
