"""The recorder's configuration, read from the environment once at start-up.

Invalid values are all reported together (ConfigError) before anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from notifier.common.config import DatabaseSettings, Env, KafkaSettings

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    database: DatabaseSettings
    kafka: KafkaSettings
    # Consumer group of every recorder replica; partitions are shared among them.
    group_id: str = "notifier-recorder"
    # A batch is applied at this many events, or when its oldest is this old.
    batch_size: int = 500
    batch_max_age_ms: int = 200
    # SIGTERM -> stop polling, apply what is pending, commit, close; within this.
    grace_seconds: float = 20.0
    metrics_port: int = 9103
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RecorderSettings:
        env = Env(environ)
        settings = cls(
            database=DatabaseSettings.from_env(env),
            kafka=KafkaSettings.from_env(env),
            group_id=env.text("RECORDER_GROUP_ID", "notifier-recorder"),
            batch_size=env.integer("RECORDER_BATCH_SIZE", 500, minimum=1, maximum=50_000),
            batch_max_age_ms=env.integer(
                "RECORDER_BATCH_MAX_AGE_MS", 200, minimum=0, maximum=60_000
            ),
            grace_seconds=env.number("RECORDER_GRACE_SECONDS", 20.0, minimum=1.0, maximum=600.0),
            metrics_port=env.integer("METRICS_PORT", 9103, minimum=0, maximum=65_535),
            log_level=env.text("LOG_LEVEL", "INFO").upper(),
        )
        if settings.log_level not in _LEVELS:
            env.problems.append(f"LOG_LEVEL={settings.log_level!r} must be one of {_LEVELS}")
        env.check()
        return settings
