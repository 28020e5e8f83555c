"""The gateway's configuration, read once from the environment by `main`.

Shared pieces (database, Kafka, topics) come from `notifier.common.config`;
everything here is specific to the gRPC gateway and its outbox.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.common.config import DatabaseSettings, Env, KafkaSettings
from notifier.gateway.auth import tokens_from_env
from notifier.gateway.tls import TlsFiles

# The one fault point this process knows; tests set NOTIFIER_FAULT_POINT to it to
# kill the gateway between the DB commit of an accept and the Kafka produce.
FAULT_AFTER_COMMIT = "gateway.after_commit"
FAULT_POINTS = (FAULT_AFTER_COMMIT,)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    database: DatabaseSettings
    kafka: KafkaSettings
    grpc_port: int = 9090
    metrics_port: int = 9101
    max_workers: int = 16
    grace_seconds: float = 20.0
    max_message_bytes: int = 1024 * 1024
    template_refresh_seconds: float = 5.0
    relay_interval_seconds: float = 1.0
    relay_after_seconds: float = 5.0
    log_level: str = "INFO"
    fault_point: str | None = field(default=None)
    # Streams (reflection, health Watch) open at once, each on a thread of its own.
    max_open_streams: int = 8
    # None: plaintext (the default). Else TLS, and mTLS when it has a client CA.
    tls: TlsFiles | None = None
    # A plaintext port serving only grpc.health.v1, for Kubernetes' gRPC probes, which
    # cannot speak TLS. None: health is served on the gRPC port only.
    health_port: int | None = None
    # Accepted bearer tokens of WhatsAppService callers; empty: no authentication.
    auth_tokens: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GatewaySettings:
        """Reads every variable, then raises ConfigError listing all that are bad."""
        env = Env(environ)
        log_level = env.text("LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            env.problems.append(f"LOG_LEVEL={log_level!r} must be one of {', '.join(LOG_LEVELS)}")
        fault_point = env.optional("NOTIFIER_FAULT_POINT")
        if fault_point is not None and fault_point not in FAULT_POINTS:
            env.problems.append(
                f"NOTIFIER_FAULT_POINT={fault_point!r} must be one of {', '.join(FAULT_POINTS)}"
            )
        settings = cls(
            database=DatabaseSettings.from_env(env),
            kafka=KafkaSettings.from_env(env),
            grpc_port=env.integer("GRPC_PORT", 9090, minimum=0, maximum=65535),
            metrics_port=env.integer("METRICS_PORT", 9101, minimum=0, maximum=65535),
            max_workers=env.integer("GRPC_MAX_WORKERS", 16, minimum=1, maximum=1024),
            grace_seconds=env.number("GRPC_GRACE_SECONDS", 20.0, minimum=0, maximum=600),
            max_message_bytes=env.integer(
                "GRPC_MAX_MESSAGE_BYTES", 1024 * 1024, minimum=4096, maximum=64 * 1024 * 1024
            ),
            template_refresh_seconds=env.number(
                "TEMPLATE_REFRESH_SECONDS", 5.0, minimum=0.1, maximum=3600
            ),
            relay_interval_seconds=env.number(
                "OUTBOX_RELAY_INTERVAL_SECONDS", 1.0, minimum=0.05, maximum=3600
            ),
            relay_after_seconds=env.number(
                "OUTBOX_RELAY_AFTER_SECONDS", 5.0, minimum=0, maximum=86400
            ),
            log_level=log_level,
            fault_point=fault_point,
            max_open_streams=env.integer("GRPC_MAX_OPEN_STREAMS", 8, minimum=1, maximum=1024),
            tls=TlsFiles.from_env(env),
            health_port=_optional_port(env, "GRPC_HEALTH_PORT"),
            auth_tokens=tokens_from_env(env),
        )
        if settings.health_port and settings.health_port == settings.grpc_port:
            env.problems.append(
                f"GRPC_HEALTH_PORT={settings.health_port} must differ from GRPC_PORT"
            )
        env.check()
        return settings


def _optional_port(env: Env, name: str) -> int | None:
    if env.optional(name) is None:
        return None
    return env.integer(name, 0, minimum=0, maximum=65535)
