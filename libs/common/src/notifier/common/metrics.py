"""The metrics port of a process: /metrics for Prometheus, /healthz for Kubernetes.

Metric names follow notifier_<service>_<thing>_<unit>; each service declares its
own metrics next to the code that updates them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, str]]


def _always_healthy() -> tuple[bool, str]:
    return True, "ok"


class MetricsServer:
    """A small HTTP server on its own thread; `stop()` closes it."""

    def __init__(
        self,
        port: int,
        health_check: HealthCheck = _always_healthy,
        registry: CollectorRegistry = REGISTRY,
        host: str = "0.0.0.0",
    ) -> None:
        handler = _handler_class(health_check, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_metrics_server(
    port: int, health_check: HealthCheck = _always_healthy, host: str = "0.0.0.0"
) -> MetricsServer:
    """Serves /metrics and /healthz on `port` (0 picks a free one) until stopped."""
    server = MetricsServer(port, health_check, host=host).start()
    log.info("metrics listening", extra={"port": server.port})
    return server


def _handler_class(
    health_check: HealthCheck, registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path.startswith("/healthz"):
                ok, reason = health_check()
                self._reply(200 if ok else 503, reason.encode() + b"\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Scrapes every few seconds are noise; nothing to log.
            return

    return Handler
