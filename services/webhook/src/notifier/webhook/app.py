"""The Flask application factory: routes wired to their collaborators, errors kept short.

Nothing escapes as a stack trace: HTTP errors answer a one-line text, and anything
unexpected is logged once under a reference and answered `internal error (ref …)`.
"""

from __future__ import annotations

import os
import socket
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from notifier.webhook.fastpath import StatusFastPath
from notifier.webhook.metrics import WebhookMetrics
from notifier.webhook.routes import Publisher, WebhookRoutes, internal_error
from notifier.webhook.settings import WebhookSettings
from notifier.webhook.signature import SignatureChecker, behind_proxies

EXTENSION = "notifier.webhook"


def create_app(
    settings: WebhookSettings | None = None,
    publisher: Publisher | None = None,
    metrics: WebhookMetrics | None = None,
) -> Flask:
    """Builds the app. Without a publisher it makes a Kafka one for this process (call
    it after any fork); under gunicorn the worker's publisher is passed in."""
    settings = settings or WebhookSettings.from_env(os.environ)
    if publisher is None:
        from notifier.webhook.publisher import KafkaPublisher

        client_id = f"notifier-webhook-{socket.gethostname()}-{os.getpid()}"
        publisher = KafkaPublisher(settings.kafka, client_id, settings.publish_timeout_seconds)
    metrics = metrics or WebhookMetrics()

    app = Flask("notifier.webhook")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    signatures = SignatureChecker(settings.twilio_auth_token, settings.public_webhook_url)
    routes = WebhookRoutes(publisher, signatures, metrics)
    routes.register(app)
    app.extensions[EXTENSION] = routes
    _instrument(app, metrics)
    _handle_errors(app)
    if settings.public_webhook_url is not None:
        # Status callbacks skip Flask's layers; every other request reaches the app.
        app.wsgi_app = StatusFastPath(  # type: ignore[method-assign]
            app.wsgi_app, routes, signatures, metrics, settings.max_body_bytes
        )
    elif settings.trusted_proxy_count:
        hops = settings.trusted_proxy_count
        app.wsgi_app = behind_proxies(app.wsgi_app, hops)  # type: ignore[method-assign,assignment]
    return app


def _instrument(app: Flask, metrics: WebhookMetrics) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        started = g.get("started")
        took = time.perf_counter() - started if started is not None else None
        metrics.answered(request.endpoint or "unmatched", response.status_code, took)
        return response


def _handle_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404, 405, 413...: a plain one-liner instead of werkzeug's HTML page.
        response = Response(f"{exc.code} {exc.name}\n", exc.code or 500, mimetype="text/plain")
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value  # e.g. Allow on a 405
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        return internal_error(request.path)
