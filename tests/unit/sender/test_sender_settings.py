"""SenderSettings.from_env: defaults, the sender choice, and every problem reported at once."""

from __future__ import annotations

import pytest

from notifier.common.config import ConfigError
from notifier.sender.settings import SenderSettings

BASE = {
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
    "DATABASE_URL": "postgresql://notifier:secret@db/notifier",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "token-value",
    "TWILIO_WHATSAPP_FROM": "+14155238886",
    "PUBLIC_WEBHOOK_URL": "https://hooks.example.com",
}


def test_defaults() -> None:
    settings = SenderSettings.from_env(BASE)
    assert settings.sender_mps == 80
    assert settings.pair_interval_seconds == 6
    assert settings.pair_burst == 3
    assert settings.concurrency == 64
    assert settings.max_attempts == 5
    assert (settings.retry_base_seconds, settings.retry_max_seconds) == (0.5, 30)
    assert settings.grace_seconds == 20
    assert settings.metrics_port == 9102
    assert settings.group_id == "notifier-sender"
    assert settings.twilio.sender == "whatsapp:+14155238886"
    assert settings.twilio.api_url is None


def test_a_messaging_service_is_the_rate_limited_sender() -> None:
    sid = "MG" + "a" * 32
    settings = SenderSettings.from_env(
        {**BASE, "TWILIO_WHATSAPP_FROM": "", "TWILIO_MESSAGING_SERVICE_SID": sid}
    )
    assert settings.twilio.sender == sid


def test_secrets_stay_out_of_the_repr() -> None:
    text = repr(SenderSettings.from_env(BASE))
    assert "token-value" not in text
    assert "secret" not in text


def test_every_bad_variable_is_reported_together() -> None:
    environ = {
        **BASE,
        "TWILIO_WHATSAPP_FROM": "",
        "TWILIO_AUTH_TOKEN": "",
        "WHATSAPP_SENDER_MPS": "fast",
        "SENDER_CONCURRENCY": "0",
        "PUBLIC_WEBHOOK_URL": "hooks.example.com",
    }
    with pytest.raises(ConfigError) as caught:
        SenderSettings.from_env(environ)
    text = "\n".join(caught.value.problems)
    for name in (
        "TWILIO_WHATSAPP_FROM",
        "TWILIO_AUTH_TOKEN",
        "WHATSAPP_SENDER_MPS",
        "SENDER_CONCURRENCY",
        "PUBLIC_WEBHOOK_URL",
    ):
        assert name in text


def test_the_from_number_must_be_e164() -> None:
    with pytest.raises(ConfigError, match="TWILIO_WHATSAPP_FROM"):
        SenderSettings.from_env({**BASE, "TWILIO_WHATSAPP_FROM": "4155238886"})


def test_a_whatsapp_prefix_on_the_from_number_is_accepted() -> None:
    settings = SenderSettings.from_env({**BASE, "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886"})
    assert settings.twilio.whatsapp_from == "+14155238886"
