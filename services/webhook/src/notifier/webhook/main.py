"""Composition root of the webhook: settings -> gunicorn (hooks in gunicorn_conf) -> app per worker.

`notifier-webhook` runs gunicorn in-process; SIGTERM stops it gracefully (requests in
flight finish, each worker flushes its producer) within WEBHOOK_GRACE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from notifier.common.config import ConfigError
from notifier.common.errors import TransientError
from notifier.common.kafka import ensure_topics
from notifier.common.logging import setup_logging
from notifier.webhook.gunicorn_conf import GunicornLifecycle
from notifier.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)


class WebhookServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's application: configured from WebhookSettings, loading the app per worker."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._lifecycle = GunicornLifecycle(settings)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._lifecycle.options().items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Imported here, in the worker: the app's metrics import prometheus_client, which
        # must first see PROMETHEUS_MULTIPROC_DIR (set by the master's on_starting hook).
        from notifier.webhook.app import create_app

        return create_app(self._lifecycle.settings, self._lifecycle.publisher)


def main() -> None:
    try:
        settings = WebhookSettings.from_env(os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    setup_logging("webhook", settings.log_level)
    if settings.public_webhook_url is None and settings.trusted_proxy_count == 0:
        log.warning(
            "neither PUBLIC_WEBHOOK_URL nor WEBHOOK_TRUSTED_PROXY_COUNT is set: signatures "
            "are checked against the URL requests reach us by, and fail behind a proxy"
        )
    try:
        ensure_topics(settings.kafka, [settings.kafka.topics.events])
    except TransientError as exc:
        # Not fatal: /readyz says so and callbacks get 503 until Kafka is back.
        log.warning("cannot make sure the events topic exists", extra={"reason": str(exc)})
    WebhookServer(settings).run()


if __name__ == "__main__":
    main()
