"""The webhook benchmark's baseline: a bare Flask hello-world under the webhook's own gunicorn
settings (workers, gthread, threads, timeouts, keep-alive, logger), without its hooks.

The settings come from `GunicornLifecycle.options()` of WebhookSettings read from the same
environment the webhook gets, so WEB_CONCURRENCY / GUNICORN_THREADS apply to both alike.
Every path answers `Hello, World!` to GET and POST. Stops on SIGTERM like the webhook.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from notifier.common.logging import setup_logging
from notifier.webhook.gunicorn_conf import GunicornLifecycle
from notifier.webhook.settings import WebhookSettings


def create_hello_app() -> Flask:
    app = Flask("bench.hello")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def hello(path: str) -> str:
        return "Hello, World!"

    return app


def gunicorn_options(settings: WebhookSettings) -> dict[str, object]:
    """The webhook's options minus its hooks (bound methods of its lifecycle)."""
    options = GunicornLifecycle(settings).options()
    return {key: value for key, value in options.items() if not inspect.ismethod(value)}


class HelloServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, object]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_hello_app()


def main() -> None:
    settings = WebhookSettings.from_env(os.environ)
    setup_logging("bench-hello", settings.log_level)
    HelloServer(gunicorn_options(settings)).run()


if __name__ == "__main__":
    main()
