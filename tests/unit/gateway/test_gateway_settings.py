"""GatewaySettings.from_env: defaults, overrides, and every bad variable reported at once."""

from __future__ import annotations

import os

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


TOKEN = "0123456789abcdef0123"


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.from_env({**REQUIRED, **environ})
    return caught.value.problems


def test_security_defaults_are_plaintext_without_auth() -> None:
    settings = GatewaySettings.from_env(REQUIRED)
    assert settings.tls is None
    assert settings.auth_tokens == ()
    assert settings.health_port is None
    assert settings.max_open_streams == 8


def test_streams_health_port_and_tokens_are_read() -> None:
    settings = GatewaySettings.from_env(
        {
            **REQUIRED,
            "GRPC_MAX_OPEN_STREAMS": "3",
            "GRPC_HEALTH_PORT": "9091",
            "GRPC_AUTH_TOKENS": f" {TOKEN} , {TOKEN[::-1]}",
        }
    )
    assert settings.max_open_streams == 3
    assert settings.health_port == 9091
    assert settings.auth_tokens == (TOKEN, TOKEN[::-1])
    assert TOKEN not in repr(settings) and TOKEN[::-1] not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"GRPC_TLS_CERT_FILE": "/etc/tls/tls.crt"},
            "GRPC_TLS_KEY_FILE is required when GRPC_TLS_CERT_FILE is set (TLS needs both)",
        ),
        (
            {"GRPC_TLS_KEY_FILE": "/etc/tls/tls.key"},
            "GRPC_TLS_CERT_FILE is required when GRPC_TLS_KEY_FILE is set (TLS needs both)",
        ),
        (
            {"GRPC_TLS_CLIENT_CA_FILE": "/etc/tls/ca.crt"},
            "GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE: "
            "mTLS is TLS plus client certificates",
        ),
    ],
    ids=["cert-only", "key-only", "client-ca-only"],
)
def test_half_a_tls_configuration_is_refused(environ: dict[str, str], expected: str) -> None:
    assert problems_of(environ) == [expected]


def test_tls_files_that_cannot_be_read_or_hold_no_pem_are_each_named() -> None:
    problems = problems_of(
        {
            "GRPC_TLS_CERT_FILE": os.devnull,  # readable, but no certificate in it
            "GRPC_TLS_KEY_FILE": "/nonexistent/tls.key",
            "GRPC_TLS_CLIENT_CA_FILE": "/nonexistent/ca.crt",
        }
    )
    assert sorted(p.split("=", 1)[0] for p in problems) == [
        "GRPC_TLS_CERT_FILE",
        "GRPC_TLS_CLIENT_CA_FILE",
        "GRPC_TLS_KEY_FILE",
    ]
    text = "\n".join(problems)
    assert f"GRPC_TLS_CERT_FILE={os.devnull!r} holds no valid PEM certificate" in text
    assert "GRPC_TLS_KEY_FILE='/nonexistent/tls.key' cannot be read: No such file" in text
    assert "GRPC_TLS_CLIENT_CA_FILE='/nonexistent/ca.crt' cannot be read" in text


@pytest.mark.parametrize(
    ("tokens", "complaint"),
    [
        ("short-token", "token 1 of 1 is shorter than 16 characters"),
        (f"{TOKEN},", "token 2 of 2 is empty"),
        (f"{TOKEN} {TOKEN}", "token 1 of 1 has a character a bearer token cannot carry"),
        (f"{TOKEN}é", "token 1 of 1 has a character a bearer token cannot carry"),
    ],
    ids=["short", "empty", "space", "non-ascii"],
)
def test_bad_auth_tokens_are_refused_without_quoting_them(tokens: str, complaint: str) -> None:
    [problem] = problems_of({"GRPC_AUTH_TOKENS": tokens})
    assert problem.startswith(f"GRPC_AUTH_TOKENS: {complaint}"), problem
    assert TOKEN not in problem and "short-token" not in problem


def test_the_health_port_must_differ_from_the_grpc_port() -> None:
    assert problems_of({"GRPC_PORT": "9090", "GRPC_HEALTH_PORT": "9090"}) == [
        "GRPC_HEALTH_PORT=9090 must differ from GRPC_PORT"
    ]


def test_every_bad_security_variable_is_listed_at_once() -> None:
    problems = problems_of(
        {
            "GRPC_MAX_OPEN_STREAMS": "0",
            "GRPC_HEALTH_PORT": "port",
            "GRPC_AUTH_TOKENS": "tiny",
            "GRPC_TLS_KEY_FILE": "/etc/tls/tls.key",
        }
    )
    text = "\n".join(problems)
    for name in ("GRPC_MAX_OPEN_STREAMS", "GRPC_HEALTH_PORT", "GRPC_AUTH_TOKENS", "GRPC_TLS"):
        assert name in text
    assert len(problems) == 4
