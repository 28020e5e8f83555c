"""Recorder settings from the environment, the loop's health check, bad timestamps."""

from __future__ import annotations

import pytest

from notifier.common.config import ConfigError
from notifier.common.payloads import PayloadError, decode_event
from notifier.common.pb import events_pb2, whatsapp_pb2
from notifier.recorder.health import LoopHealth
from notifier.recorder.settings import RecorderSettings

REQUIRED = {
    "DATABASE_URL": "postgresql://u:secret@db/notifier",
    "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
}


def test_defaults_apply_when_only_the_required_variables_are_set() -> None:
    settings = RecorderSettings.from_env(REQUIRED)
    assert settings.group_id == "notifier-recorder"
    assert (settings.batch_size, settings.batch_max_age_ms) == (500, 200)
    assert (settings.grace_seconds, settings.metrics_port, settings.log_level) == (
        20.0,
        9103,
        "INFO",
    )
    assert settings.kafka.topics.events == "whatsapp.events.v1"
    assert "secret" not in repr(settings)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        RecorderSettings.from_env(
            {"RECORDER_BATCH_SIZE": "0", "RECORDER_GRACE_SECONDS": "soon", "LOG_LEVEL": "loud"}
        )
    text = str(caught.value)
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "RECORDER_BATCH_SIZE",
                 "RECORDER_GRACE_SECONDS", "LOG_LEVEL"):  # fmt: skip
        assert name in text


def test_overrides_are_read() -> None:
    settings = RecorderSettings.from_env(
        {**REQUIRED, "RECORDER_GROUP_ID": "g", "RECORDER_BATCH_SIZE": "50",
         "RECORDER_BATCH_MAX_AGE_MS": "0", "LOG_LEVEL": "debug", "METRICS_PORT": "0"}
    )  # fmt: skip
    assert (settings.group_id, settings.batch_size, settings.batch_max_age_ms) == ("g", 50, 0)
    assert (settings.log_level, settings.metrics_port) == ("DEBUG", 0)


def test_health_fails_once_the_loop_has_not_polled_for_too_long() -> None:
    now = [100.0]
    health = LoopHealth(max_silence=30.0, clock=lambda: now[0])
    assert health.check() == (True, "ok")
    now[0] = 131.0
    ok, reason = health.check()
    assert not ok and "31 s" in reason
    health.beat()
    assert health.check()[0]


def test_an_out_of_range_timestamp_is_a_payload_error_so_it_is_dead_lettered() -> None:
    event = events_pb2.Event()
    event.status_callback.message_id = 1
    event.status_callback.status = whatsapp_pb2.SENT
    event.status_callback.received_at.seconds = 10**12
    with pytest.raises(PayloadError, match="timestamp"):
        decode_event(event.SerializeToString())
