"""gunicorn settings and server hooks for the webhook: what runs in the master, and in workers.

Master: empties the Prometheus multiprocess directory before the first fork, serves the
workers' summed metrics on METRICS_PORT, and marks dead workers. Worker: dies with the
master, builds its own Kafka publisher after the fork and flushes it on exit.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn import glogging

from notifier.common.logging import setup_logging
from notifier.webhook.publisher import KafkaPublisher
from notifier.webhook.settings import WebhookSettings

if TYPE_CHECKING:
    from notifier.common.metrics import MetricsServer

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PR_SET_PDEATHSIG = 1


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own messages (boot, worker exits) as JSON lines like ours; no access log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.propagate = True


class GunicornLifecycle:
    """The hooks gunicorn calls, and the state they share in each process.

    The master's copy holds the metrics server; each worker's copy (inherited by fork)
    holds that worker's publisher, which `main` hands to the app.
    """

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.publisher: KafkaPublisher | None = None
        self._metrics_server: MetricsServer | None = None
        self._own_metrics_dir: str | None = None

    def options(self) -> dict[str, object]:
        s = self.settings
        return {
            "bind": [f"0.0.0.0:{s.http_port}"],
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": s.threads,
            "graceful_timeout": math.ceil(s.grace_seconds),
            "timeout": 30,
            "keepalive": 5,
            # Our signature check decides which forwarded headers to trust (ProxyFix);
            # gunicorn must not rewrite the scheme from X-Forwarded-Proto on its own.
            "secure_scheme_headers": {},
            # A read-only root filesystem has no room for gunicorn's control socket.
            "control_socket_disable": True,
            "logger_class": JsonLogger,
            "loglevel": s.log_level.lower(),
            "on_starting": self.on_starting,
            "when_ready": self.when_ready,
            "post_fork": self.post_fork,
            "worker_exit": self.worker_exit,
            "child_exit": self.child_exit,
            "on_exit": self.on_exit,
        }

    def on_starting(self, server: Any) -> None:
        """Master, before the first fork: a clean multiprocess directory for the metrics."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            # prometheus_client picks its storage when first imported: it must not be
            # imported in this process before the variable is set.
            if "prometheus_client" in sys.modules:
                raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_ENV}")
            directory = self._own_metrics_dir = tempfile.mkdtemp(prefix="notifier-webhook-")
            os.environ[MULTIPROC_ENV] = directory
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()  # values of a previous run would be added to ours

    def when_ready(self, server: Any) -> None:
        """Master, once listening: /metrics on METRICS_PORT sums every worker's files."""
        from prometheus_client import CollectorRegistry, multiprocess

        from notifier.common.metrics import MetricsServer

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        self._metrics_server = MetricsServer(self.settings.metrics_port, registry=registry)
        self._metrics_server.start()
        log.info(
            "webhook listening",
            extra={
                "port": self.settings.http_port,
                "metrics_port": self._metrics_server.port,
                "workers": self.settings.workers,
                "threads": self.settings.threads,
                "topic": self.settings.kafka.topics.events,
                "signed_url_from": self.settings.signed_url_source,
            },
        )

    def post_fork(self, server: Any, worker: Any) -> None:
        """Worker, right after the fork: tied to the master's life, logging and this
        worker's Kafka producer."""
        die_with_master(worker.ppid)
        setup_logging("webhook", self.settings.log_level)
        client_id = f"notifier-webhook-{socket.gethostname()}-{os.getpid()}"
        self.publisher = KafkaPublisher(
            self.settings.kafka, client_id, self.settings.publish_timeout_seconds
        )

    def worker_exit(self, server: Any, worker: Any) -> None:
        """Worker, after its last request: hand Kafka what is still in flight.

        gunicorn also calls this in the master for a worker already gone; the
        master's copy has no publisher.
        """
        if self.publisher is not None:
            self.publisher.close(self.settings.publish_timeout_seconds)
            self.publisher = None

    def child_exit(self, server: Any, worker: Any) -> None:
        """Master, when a worker died: its live values leave the sum."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    def on_exit(self, server: Any) -> None:
        if self._metrics_server is not None:
            self._metrics_server.stop()
        if self._own_metrics_dir is not None:
            shutil.rmtree(self._own_metrics_dir, ignore_errors=True)
        log.info("webhook stopped")


def die_with_master(master_pid: int) -> None:
    """Worker: be killed with the master when it dies, even by SIGKILL (Linux).

    A worker left behind by a master that crashed lives on as an orphan, draining its
    connections for up to the grace period while it still holds the listening socket, so
    the restarted webhook cannot bind the port and exits ("Connection in use") again and
    again meanwhile. Killed at once instead, as Kubernetes kills a container's every
    process: a callback it held got no 200, and Twilio posts it again.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        log.warning("worker not tied to the master's life", extra={"errno": ctypes.get_errno()})
    if os.getppid() != master_pid:  # the master died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)
