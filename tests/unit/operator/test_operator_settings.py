"""Operator settings from the environment, and its log lines."""

from __future__ import annotations

import logging

import pytest

from notifier.common.config import ConfigError
from notifier.operator.logs import KopfContextFilter
from notifier.operator.settings import OperatorSettings

REQUIRED = {"DATABASE_URL": "postgresql://op:secret@db/notifier"}


def test_defaults_watch_every_namespace_and_serve_liveness_on_8080() -> None:
    settings = OperatorSettings.from_env(REQUIRED)
    assert settings.clusterwide and settings.namespaces == ()
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert (settings.retry_delay_seconds, settings.log_level) == (10.0, "INFO")
    assert "secret" not in repr(settings)


def test_operator_namespace_restricts_the_watch() -> None:
    settings = OperatorSettings.from_env({**REQUIRED, "OPERATOR_NAMESPACE": "notifier, ops"})
    assert settings.namespaces == ("notifier", "ops") and not settings.clusterwide


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        OperatorSettings.from_env(
            {
                "OPERATOR_LIVENESS_ENDPOINT": "tcp://x:abc",
                "OPERATOR_RETRY_DELAY_SECONDS": "0",
                "LOG_LEVEL": "loud",
            }
        )
    assert len(caught.value.problems) == 4
    assert caught.value.problems[0] == "DATABASE_URL is required"


def test_kopf_object_context_becomes_a_resource_name() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, "", 0, "stored", (), None)
    record.k8s_ref = {"namespace": "notifier", "name": "pickup-ready", "uid": "u"}
    record.settings = object()
    assert KopfContextFilter().filter(record)
    assert record.__dict__["resource"] == "notifier/pickup-ready"
    assert not hasattr(record, "settings") and not hasattr(record, "k8s_ref")
