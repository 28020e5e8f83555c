"""The operator's configuration, read from the environment once at start-up.

Invalid values are all reported together (ConfigError) before anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from notifier.common.config import DatabaseSettings, Env

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LIVENESS_ENDPOINT = "http://0.0.0.0:8080/healthz"
DEFAULT_RETRY_DELAY_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    database: DatabaseSettings
    # Namespaces whose MessageTemplates are watched; empty means every namespace.
    namespaces: tuple[str, ...] = ()
    # Where kopf serves the liveness endpoint that the pod's probe calls.
    liveness_endpoint: str = DEFAULT_LIVENESS_ENDPOINT
    # How long to wait before retrying a resource while PostgreSQL is unreachable.
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS
    log_level: str = "INFO"

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorSettings:
        env = Env(environ)
        namespaces = tuple(
            part.strip()
            for part in env.text("OPERATOR_NAMESPACE", "").split(",")
            if part.strip() and part.strip() != "*"
        )
        settings = cls(
            database=DatabaseSettings.from_env(env),
            namespaces=namespaces,
            liveness_endpoint=env.text("OPERATOR_LIVENESS_ENDPOINT", DEFAULT_LIVENESS_ENDPOINT),
            retry_delay_seconds=env.number(
                "OPERATOR_RETRY_DELAY_SECONDS",
                DEFAULT_RETRY_DELAY_SECONDS,
                minimum=0.5,
                maximum=3600.0,
            ),
            log_level=env.text("LOG_LEVEL", "INFO").upper(),
        )
        if not _is_http_endpoint(settings.liveness_endpoint):
            env.problems.append(
                f"OPERATOR_LIVENESS_ENDPOINT={settings.liveness_endpoint!r} must look like "
                "http://0.0.0.0:8080/healthz"
            )
        if settings.log_level not in _LEVELS:
            env.problems.append(f"LOG_LEVEL={settings.log_level!r} must be one of {_LEVELS}")
        env.check()
        return settings


def _is_http_endpoint(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme == "http" and bool(parts.hostname) and parts.port is not None
    except ValueError:  # a port that is not a number
        return False
