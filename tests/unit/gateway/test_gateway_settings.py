"""GatewaySettings.from_env: defaults, overrides, and every bad variable reported at once."""

from __future__ import annotations

import pytest

from notifier.common.config import ConfigError
from notifier.gateway.settings import FAULT_AFTER_COMMIT, GatewaySettings

REQUIRED = {
    "DATABASE_URL": "postgresql://u:secret@db/notifier",
    "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
}


def test_defaults() -> None:
    settings = GatewaySettings.from_env(REQUIRED)
    assert settings.grpc_port == 9090
    assert settings.metrics_port == 9101
    assert settings.max_workers == 16
    assert settings.grace_seconds == 20
    assert settings.max_message_bytes == 1024 * 1024
    assert settings.template_refresh_seconds == 5
    assert settings.relay_interval_seconds == 1
    assert settings.relay_after_seconds == 5
    assert settings.log_level == "INFO"
    assert settings.fault_point is None
    assert settings.kafka.topics.outbound == "whatsapp.outbound.v1"


def test_overrides() -> None:
    settings = GatewaySettings.from_env(
        {
            **REQUIRED,
            "GRPC_PORT": "0",
            "GRPC_MAX_WORKERS": "4",
            "OUTBOX_RELAY_AFTER_SECONDS": "0.5",
            "LOG_LEVEL": "debug",
            "KAFKA_TOPIC_OUTBOUND": "out.test",
            "NOTIFIER_FAULT_POINT": FAULT_AFTER_COMMIT,
        }
    )
    assert (settings.grpc_port, settings.max_workers) == (0, 4)
    assert settings.relay_after_seconds == 0.5
    assert settings.log_level == "DEBUG"
    assert settings.kafka.topics.outbound == "out.test"
    assert settings.fault_point == FAULT_AFTER_COMMIT


def test_every_bad_variable_is_listed() -> None:
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.from_env(
            {
                "GRPC_PORT": "70000",
                "GRPC_MAX_WORKERS": "many",
                "LOG_LEVEL": "LOUD",
                "NOTIFIER_FAULT_POINT": "gateway.somewhere",
            }
        )
    text = str(caught.value)
    for name in (
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "GRPC_PORT",
        "GRPC_MAX_WORKERS",
        "LOG_LEVEL",
        "NOTIFIER_FAULT_POINT",
    ):
        assert name in text


def test_the_database_password_stays_out_of_the_repr() -> None:
    assert "secret" not in repr(GatewaySettings.from_env(REQUIRED))
