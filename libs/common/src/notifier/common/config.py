"""Environment -> frozen settings. Reading collects every problem, then fails once.

Each service declares its own `*Settings.from_env`; the pieces several services
share (Kafka, topics, the database URL) are declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from notifier.common.db import redact_dsn

_N = TypeVar("_N", int, float)


class ConfigError(Exception):
    """One or more environment variables are missing or invalid; lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class Env:
    """Typed reads of environment variables that remember every problem.

    Call `check()` after the last read: it raises ConfigError naming each bad
    variable, so an operator fixes them all in one go.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            self.problems.append(f"{name} is required")
            return ""
        return default

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not an integer")
            return default
        return self._bounded(name, value, minimum, maximum)

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number")
            return default
        return self._bounded(name, value, minimum, maximum)

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name}={raw!r} is not a boolean (true/false)")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            self.problems.append(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value

    def _bounded(self, name: str, value: _N, minimum: _N | None, maximum: _N | None) -> _N:
        if minimum is not None and value < minimum:
            self.problems.append(f"{name}={value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            self.problems.append(f"{name}={value} is above the maximum {maximum}")
        return value

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """Every variable starting with `prefix`, keyed by the rest of its name."""
        return {
            key.removeprefix(prefix): value
            for key, value in self._environ.items()
            if key.startswith(prefix) and value.strip()
        }

    def check(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


OUTBOUND_TOPIC = "whatsapp.outbound.v1"
EVENTS_TOPIC = "whatsapp.events.v1"
DEAD_LETTER_TOPIC = "whatsapp.outbound.dlq.v1"


@dataclass(frozen=True, slots=True)
class Topics:
    outbound: str = OUTBOUND_TOPIC
    events: str = EVENTS_TOPIC
    dead_letter: str = DEAD_LETTER_TOPIC

    @classmethod
    def from_env(cls, env: Env) -> Topics:
        return cls(
            outbound=env.text("KAFKA_TOPIC_OUTBOUND", OUTBOUND_TOPIC),
            events=env.text("KAFKA_TOPIC_EVENTS", EVENTS_TOPIC),
            dead_letter=env.text("KAFKA_TOPIC_DLQ", DEAD_LETTER_TOPIC),
        )


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str
    topics: Topics = field(default_factory=Topics)
    # Partitions for topics this service creates when they are missing.
    partitions: int = 12
    # Consumer group liveness; the broker drops a member silent for this long.
    session_timeout_ms: int = 10_000
    # librdkafka properties added verbatim (security.protocol, sasl.*, ...), from
    # KAFKA_CONFIG_<NAME> with '_' for '.', e.g. KAFKA_CONFIG_SECURITY_PROTOCOL.
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The same for consumers only (fetch.*, ...), from KAFKA_CONSUMER_CONFIG_<NAME>: a
    # consumer property given to a producer makes librdkafka warn at every start.
    consumer_extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Env) -> KafkaSettings:
        def properties(prefix: str) -> dict[str, str]:
            return {
                key.lower().replace("_", "."): value
                for key, value in env.with_prefix(prefix).items()
            }

        extra = properties("KAFKA_CONFIG_")
        return cls(
            bootstrap_servers=env.text("KAFKA_BOOTSTRAP_SERVERS"),
            topics=Topics.from_env(env),
            partitions=env.integer("KAFKA_TOPIC_PARTITIONS", 12, minimum=1, maximum=1000),
            session_timeout_ms=env.integer(
                "KAFKA_SESSION_TIMEOUT_MS", 10_000, minimum=3_000, maximum=300_000
            ),
            extra=extra,
            consumer_extra=properties("KAFKA_CONSUMER_CONFIG_"),
        )


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Env) -> DatabaseSettings:
        return cls(url=env.text("DATABASE_URL"))

    def __repr__(self) -> str:
        return f"DatabaseSettings(url={redact_dsn(self.url)!r})"
