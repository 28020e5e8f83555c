"""Webhook settings from the environment: defaults, all bad variables at once, no secret shown."""

from __future__ import annotations

import pytest

from notifier.common.config import ConfigError
from notifier.webhook.settings import WebhookSettings

REQUIRED = {"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "TWILIO_AUTH_TOKEN": "s3cret-token"}


def test_defaults_apply_when_only_the_required_variables_are_set() -> None:
    s = WebhookSettings.from_env(REQUIRED)
    assert (s.http_port, s.metrics_port, s.workers, s.threads) == (8080, 9104, 2, 4)
    assert (s.max_body_bytes, s.publish_timeout_seconds, s.grace_seconds) == (65536, 5.0, 20.0)
    assert (s.public_webhook_url, s.trusted_proxy_count, s.log_level) == (None, 0, "INFO")
    assert s.kafka.topics.events == "whatsapp.events.v1"


def test_the_auth_token_never_shows_in_the_repr() -> None:
    assert "s3cret-token" not in repr(WebhookSettings.from_env(REQUIRED))


def test_the_public_url_loses_its_trailing_slash() -> None:
    s = WebhookSettings.from_env({**REQUIRED, "PUBLIC_WEBHOOK_URL": "https://hooks.example.com/"})
    assert s.public_webhook_url == "https://hooks.example.com"
    assert "hooks.example.com" in s.signed_url_source


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        WebhookSettings.from_env(
            {
                "PUBLIC_WEBHOOK_URL": "hooks.example.com/webhook?x=1",
                "WEBHOOK_TRUSTED_PROXY_COUNT": "-1",
                "WEBHOOK_MAX_BODY_BYTES": "lots",
                "WEBHOOK_PUBLISH_TIMEOUT_SECONDS": "0",
                "WEB_CONCURRENCY": "0",
                "LOG_LEVEL": "loud",
            }
        )
    text = str(caught.value)
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "TWILIO_AUTH_TOKEN",
        "PUBLIC_WEBHOOK_URL",
        "WEBHOOK_TRUSTED_PROXY_COUNT",
        "WEBHOOK_MAX_BODY_BYTES",
        "WEBHOOK_PUBLISH_TIMEOUT_SECONDS",
        "WEB_CONCURRENCY",
        "LOG_LEVEL",
    ):
        assert name in text
