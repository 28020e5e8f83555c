"""Fixtures of the webhook tests: the app on a fake publisher, and its test client."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from notifier.webhook.app import create_app
from notifier.webhook.metrics import WebhookMetrics
from tests.integration.webhook.webhook_support import FakePublisher, settings


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def metrics() -> WebhookMetrics:
    return WebhookMetrics()


@pytest.fixture
def app(publisher: FakePublisher, metrics: WebhookMetrics) -> Flask:
    return create_app(settings(), publisher, metrics)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
