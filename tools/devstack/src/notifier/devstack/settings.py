"""What `make run` starts and where: every backend is embedded unless its setting is given.

DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and real Twilio credentials (TWILIO_ACCOUNT_SID
and TWILIO_AUTH_TOKEN without TWILIO_API_URL) each replace the embedded part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from notifier.common.config import Env


@dataclass(frozen=True, slots=True)
class DevstackSettings:
    data_dir: Path
    database_url: str | None = field(repr=False)
    kafka_bootstrap_servers: str | None
    twilio_account_sid: str | None
    twilio_auth_token: str | None = field(repr=False)
    twilio_api_url: str | None
    postgres_port: int
    kafka_port: int
    emulator_port: int
    emulator_mps: int
    emulator_latency_ms: int
    grpc_port: int
    webhook_port: int
    metrics_ports: Mapping[str, int]
    whatsapp_from: str
    sender_mps: int
    public_webhook_url: str
    log_level: str

    @property
    def uses_real_twilio(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and not self.twilio_api_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DevstackSettings:
        env = Env(environ)
        settings = cls(
            data_dir=Path(env.text("DEVSTACK_DIR", ".devstack")),
            database_url=env.optional("DATABASE_URL"),
            kafka_bootstrap_servers=env.optional("KAFKA_BOOTSTRAP_SERVERS"),
            twilio_account_sid=env.optional("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=env.optional("TWILIO_AUTH_TOKEN"),
            twilio_api_url=env.optional("TWILIO_API_URL"),
            postgres_port=env.integer("DEVSTACK_POSTGRES_PORT", 55432, minimum=1, maximum=65535),
            kafka_port=env.integer("DEVSTACK_KAFKA_PORT", 19092, minimum=1, maximum=65535),
            emulator_port=env.integer("DEVSTACK_EMULATOR_PORT", 8089, minimum=1, maximum=65535),
            emulator_mps=env.integer("DEVSTACK_EMULATOR_MPS", 80, minimum=0),
            emulator_latency_ms=env.integer("DEVSTACK_EMULATOR_LATENCY_MS", 50, minimum=0),
            grpc_port=env.integer("GRPC_PORT", 9090, minimum=1, maximum=65535),
            webhook_port=env.integer("HTTP_PORT", 8080, minimum=1, maximum=65535),
            metrics_ports={
                "gateway": env.integer("DEVSTACK_GATEWAY_METRICS_PORT", 9101, minimum=1),
                "sender": env.integer("DEVSTACK_SENDER_METRICS_PORT", 9102, minimum=1),
                "recorder": env.integer("DEVSTACK_RECORDER_METRICS_PORT", 9103, minimum=1),
                "webhook": env.integer("DEVSTACK_WEBHOOK_METRICS_PORT", 9104, minimum=1),
            },
            whatsapp_from=env.text("TWILIO_WHATSAPP_FROM", "+14155238886"),
            sender_mps=env.integer("WHATSAPP_SENDER_MPS", 80, minimum=1),
            public_webhook_url=env.text("PUBLIC_WEBHOOK_URL", "http://127.0.0.1:8080"),
            log_level=env.text("LOG_LEVEL", "INFO"),
        )
        env.check()
        return settings
