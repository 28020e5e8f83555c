"""The system under test for the benchmarks: a durable PostgreSQL and a Tansu broker once per
run, our services as real subprocesses (as in production), and nothing left running after.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import psycopg2
from procstats import MemoryPeak, Monitor, PidSource, TreePeak, with_children
from workload import send_request

from notifier.common.migrate import apply_migrations
from notifier.common.pb import whatsapp_pb2_grpc
from notifier.devstack.ports import free_port
from notifier.devstack.postgres import EmbeddedPostgres
from notifier.devstack.probes import grpc_serving, http_ok
from notifier.devstack.processes import poll_until, tail, terminate
from notifier.devstack.supervisor import service_environment
from notifier.devstack.tansu import TansuBroker
from notifier.gateway.settings import GatewaySettings
from notifier.webhook.settings import WebhookSettings

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
BIN = Path(sys.executable).parent
MIGRATIONS = REPO / "migrations"
HOST = "127.0.0.1"
# Production-like durability: every commit is flushed to disk before it is acknowledged.
# (The tests' settings turn fsync off; a benchmark of durable accepts must not.)
SLOW_STATEMENT_MS = 40
DURABLE_POSTGRES = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # Statements slower than this are logged, so a latency figure can say what stalled.
    "log_min_duration_statement": str(SLOW_STATEMENT_MS),
    "log_checkpoints": "on",
}
WHATSAPP_FROM = "+14155238886"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"
# The no-op baseline gets the gateway's default thread pool (GRPC_MAX_WORKERS).
GATEWAY_WORKERS: int = next(
    f.default for f in dataclasses.fields(GatewaySettings) if f.name == "max_workers"
)  # type: ignore[assignment]
# The webhook's gunicorn shape (WEB_CONCURRENCY, GUNICORN_THREADS defaults), for the record.
WEBHOOK_WORKERS: int = next(
    f.default for f in dataclasses.fields(WebhookSettings) if f.name == "workers"
)  # type: ignore[assignment]
WEBHOOK_THREADS: int = next(
    f.default for f in dataclasses.fields(WebhookSettings) if f.name == "threads"
)  # type: ignore[assignment]
# What Twilio would call in production: the signature covers this, not our address.
PUBLIC_WEBHOOK_URL = "https://hooks.bench.example"
# A service's argv, rewritten before it starts (the profiler wraps services this way).
Launcher = Callable[[str, list[str]], list[str]]
# Request numbers are handed out in blocks, so every benchmark's recipients are distinct.
_INDEX_BLOCK = 500_000
_INDEX_LIMIT = 8_000_000


class BenchError(RuntimeError):
    """The system under test did not start, answer or stop as expected."""


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Starts `argv` so that it gets SIGTERM if we die (bench/die_with_parent.py), without
    a `preexec_fn`: see that module for why."""
    guard = [sys.executable, str(BENCH / "die_with_parent.py"), str(os.getpid())]
    return subprocess.Popen([*guard, *argv], **popen)


class Service:
    """One subprocess; its stdout and stderr go to `log_path`. Dies with us (SIGTERM)."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.health_url = ""
        self.metrics_url = ""
        with log_path.open("ab") as log:
            self._proc = spawn(
                argv,
                env=service_environment(env),  # as `make run` starts them
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def require_alive(self) -> None:
        if not self.alive():
            raise BenchError(
                f"{self.name} exited with code {self._proc.returncode}; "
                f"last lines of {self.log_path}:\n{tail(self.log_path)}"
            )

    def wait_until(self, check: Any, timeout: float, what: str) -> None:
        """Polls `check` until true; fails early, with the log's tail, if the process dies."""
        if not poll_until(lambda: not self.alive() or check(), timeout, interval=0.05):
            raise BenchError(f"{self.name}: {what} within {timeout:.0f}s:\n{tail(self.log_path)}")
        self.require_alive()

    def stop(self, grace: float = 25.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        terminate(self._proc, grace)


class Services:
    """The processes of one benchmark: stopped in reverse start order when the block ends,
    each watched process's peak memory read just before it stops."""

    def __init__(self, bench: Bench, label: str, launcher: Launcher | None = None) -> None:
        self._bench = bench
        self._label = label
        self._launcher = launcher
        self._started: list[tuple[Service, bool]] = []
        self._trees: set[str] = set()

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        watch: bool = True,
        watch_children: bool = False,
    ) -> Service:
        """Starts `argv`; `watch` samples its memory, `watch_children` its children's too
        (gunicorn's workers)."""
        log_path = self._bench.workdir / f"{self._label}-{name}.log"
        for n in range(2, 100):
            if not log_path.exists():
                break
            log_path = self._bench.workdir / f"{self._label}-{name}-{n}.log"
        if self._launcher is not None:
            argv = self._launcher(name, list(argv))
        service = Service(name, argv, env, log_path)
        self._started.append((service, watch))
        if watch:
            self._bench.monitor.watch(self._key(name), service.pid)
        if watch_children:
            self._trees.add(name)
            self._bench.monitor.watch_children(self._key(name), service.pid)
        return service

    @property
    def running(self) -> list[Service]:
        return [service for service, _watched in self._started]

    def stop(self, service: Service) -> None:
        for entry in list(self._started):
            if entry[0] is service:
                self._finish(*entry)
                self._started.remove(entry)

    def stop_all(self) -> None:
        while self._started:
            self._finish(*self._started.pop())

    def _finish(self, service: Service, watched: bool) -> None:
        try:
            if service.name in self._trees:
                self._trees.discard(service.name)
                tree = self._bench.monitor.finish_children(self._key(service.name))
                self._bench.tree_memory.append(tree)
            if watched and service.alive():
                self._bench.memory.append(self._bench.monitor.finish(self._key(service.name)))
        finally:
            service.stop()

    def _key(self, name: str) -> str:
        return f"{self._label}/{name}"

    # The services, configured as in production except where a benchmark says otherwise.

    def gateway(self, env: Mapping[str, str], name: str = "gateway") -> tuple[Service, str]:
        port = free_port(HOST)
        service = self.start(
            name,
            [str(BIN / "notifier-gateway")],
            {**env, "GRPC_PORT": str(port), "METRICS_PORT": str(free_port(HOST))},
        )
        target = f"{HOST}:{port}"
        service.wait_until(lambda: grpc_serving(target), 60, "the gateway never reported SERVING")
        return service, target

    def noop_server(self, workers: int = GATEWAY_WORKERS) -> tuple[Service, str]:
        """The baseline server; the port is read from its log line `port <n>`."""
        argv = [sys.executable, str(BENCH / "noop_server.py"), "--workers", str(workers)]
        service = self.start("noop", argv, {})
        ports: list[int] = []

        def bound() -> bool:
            for line in service.log_path.read_text().splitlines():
                if line.startswith("port "):
                    ports.append(int(line.split()[1]))
                    return True
            return False

        service.wait_until(bound, 30, "the no-op server never printed its port")
        return service, f"{HOST}:{ports[0]}"

    def emulator(
        self, mps: int, latency_ms: int, callbacks: Sequence[str] = ()
    ) -> tuple[Service, str]:
        """The Twilio emulator; without `callbacks` (its callback options) it posts none."""
        port = free_port(HOST)
        argv = [str(BIN / "twilio-emulator"), "--port", str(port), "--mps", str(mps)]
        argv += ["--latency-ms", str(latency_ms)]
        argv += list(callbacks) if callbacks else ["--no-callbacks"]
        argv += ["--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
        service = self.start("emulator", argv, {"LOG_LEVEL": "WARNING"})
        url = f"http://{HOST}:{port}"
        service.wait_until(lambda: http_ok(url + "/_emulator/healthz"), 30, "no emulator")
        return service, url

    def sender(
        self,
        env: Mapping[str, str],
        emulator_url: str,
        name: str = "sender",
        wait: bool = True,
        webhook_url: str = "http://127.0.0.1:9/hooks",
    ) -> Service:
        """A sender replica; with `wait=False` the caller waits with `wait_healthy`.
        `webhook_url` is the StatusCallback base (by default a port nothing listens on)."""
        metrics_port = free_port(HOST)
        service = self.start(
            name,
            [str(BIN / "notifier-sender")],
            {
                **env,
                "TWILIO_API_URL": emulator_url,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
                "PUBLIC_WEBHOOK_URL": webhook_url,
                "METRICS_PORT": str(metrics_port),
            },
        )
        service.health_url = f"http://{HOST}:{metrics_port}/healthz"
        service.metrics_url = f"http://{HOST}:{metrics_port}/metrics"
        if wait:
            wait_healthy(service)
        return service

    def webhook(self, env: Mapping[str, str], public_url: str | None = None) -> tuple[Service, str]:
        """`notifier-webhook` (gunicorn, its default workers and threads); returns it and
        its local base URL. Twilio signs over `public_url` (default: the local URL)."""
        port, metrics_port = free_port(HOST), free_port(HOST)
        url = f"http://{HOST}:{port}"
        service = self.start(
            "webhook",
            [str(BIN / "notifier-webhook")],
            {
                **env,
                "HTTP_PORT": str(port),
                "METRICS_PORT": str(metrics_port),
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "PUBLIC_WEBHOOK_URL": public_url or url,
            },
            watch_children=True,
        )
        service.health_url = url + "/readyz"
        service.metrics_url = f"http://{HOST}:{metrics_port}/metrics"
        wait_healthy(service)
        return service, url

    def hello_app(self, env: Mapping[str, str]) -> tuple[Service, str]:
        """The bare Flask baseline under the webhook's gunicorn settings (same `env`)."""
        port = free_port(HOST)
        url = f"http://{HOST}:{port}"
        service = self.start(
            "hello",
            [sys.executable, str(BENCH / "hello_app.py")],
            {**env, "HTTP_PORT": str(port), "TWILIO_AUTH_TOKEN": AUTH_TOKEN},
            watch_children=True,
        )
        service.health_url = url + "/"
        wait_healthy(service)
        return service, url

    def recorder(self, env: Mapping[str, str], wait: bool = True) -> Service:
        metrics_port = free_port(HOST)
        service = self.start(
            "recorder",
            [str(BIN / "notifier-recorder")],
            {**env, "METRICS_PORT": str(metrics_port)},
        )
        service.health_url = f"http://{HOST}:{metrics_port}/healthz"
        service.metrics_url = f"http://{HOST}:{metrics_port}/metrics"
        if wait:
            wait_healthy(service)
        return service


@dataclass
class Bench:
    """What every benchmark shares: the backends, a work directory, the memory monitor."""

    workdir: Path
    postgres: EmbeddedPostgres
    kafka: TansuBroker
    monitor: Monitor
    quick: bool
    memory: list[MemoryPeak] = field(default_factory=list)
    tree_memory: list[TreePeak] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    """Figures a later benchmark builds on (P2 runs at half of P1's maximum)."""
    _next_index: int = 0

    def services(self, label: str, launcher: Launcher | None = None) -> Services:
        return Services(self, label, launcher)

    def database(self, name: str) -> str:
        """A new database `bench_<name>` with every migration applied; its URL."""
        dbname = f"bench_{name}"
        conn = psycopg2.connect(self.postgres.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            conn.close()
        url = self.postgres.url(dbname)
        apply_migrations(url, MIGRATIONS)
        return url

    def service_env(self, database_url: str, prefix: str) -> dict[str, str]:
        """What every service gets: the database, the broker, this benchmark's own topics."""
        return {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            # Tansu: a consumer joins its group in about half the session timeout.
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_TOPIC_OUTBOUND": f"bench.{prefix}.outbound",
            "KAFKA_TOPIC_EVENTS": f"bench.{prefix}.events",
            "KAFKA_TOPIC_DLQ": f"bench.{prefix}.dlq",
            "SENDER_GROUP_ID": f"bench-{prefix}-sender",
            "RECORDER_GROUP_ID": f"bench-{prefix}-recorder",
            "LOG_LEVEL": "INFO",
        }

    def index_block(self) -> int:
        """The first of 500,000 request numbers no other benchmark of this run uses."""
        first = self._next_index
        if first + _INDEX_BLOCK > _INDEX_LIMIT:
            raise BenchError("out of distinct recipient numbers for this run")
        self._next_index += _INDEX_BLOCK
        return first

    def backend_pids(self) -> dict[str, PidSource]:
        """PostgreSQL (postmaster and every backend) and the broker, for CPU accounting."""
        postmaster = int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        broker = self.kafka.pid
        assert broker is not None
        return {"postgres": with_children(postmaster), "tansu": lambda: [broker]}

    def query(self, database_url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
        conn = psycopg2.connect(database_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()


@contextmanager
def open_bench(quick: bool, keep: bool = False) -> Iterator[Bench]:
    """Starts PostgreSQL (durable) and Tansu in a new temp directory; stops and removes
    them afterwards, on errors and Ctrl-C too."""
    workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
    # Under root PostgreSQL runs as another user, who must be able to enter this directory.
    workdir.chmod(0o755)
    try:
        with ExitStack() as stack:
            postgres = stack.enter_context(
                EmbeddedPostgres(workdir / "postgres", settings=DURABLE_POSTGRES)
            )
            kafka = stack.enter_context(
                TansuBroker(log_path=workdir / "tansu.log", die_with_parent=True)
            )
            monitor = stack.enter_context(Monitor())
            yield Bench(workdir, postgres, kafka, monitor, quick)
    finally:
        if keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def wait_healthy(service: Service, timeout: float = 60) -> None:
    """Until the service's /healthz answers 200."""
    service.wait_until(lambda: http_ok(service.health_url), timeout, "it never became healthy")


def accept_all(target: str, indices: Sequence[int], in_flight: int = 32) -> list[int]:
    """Sends request number i for each index through SendTemplateMessage, `in_flight` at
    a time; returns the message ids in order. Any failed call fails the benchmark."""
    ids: list[int] = []
    with grpc.insecure_channel(target) as channel:
        call = whatsapp_pb2_grpc.WhatsAppServiceStub(channel).SendTemplateMessage
        for start in range(0, len(indices), in_flight):
            chunk = indices[start : start + in_flight]
            futures = [call.future(send_request(i), timeout=30) for i in chunk]
            try:
                ids += [f.result().message_id for f in futures]
            except grpc.RpcError as exc:
                raise BenchError(f"an accept failed: {exc}") from exc
    return ids


def http_json(url: str, timeout: float = 30.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.loads(reply.read())


def metric_total(url: str, name: str) -> float:
    """The sum over every label set of one Prometheus sample name at `url` (/metrics)."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total
