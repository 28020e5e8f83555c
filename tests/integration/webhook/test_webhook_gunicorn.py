"""The webhook as deployed: `notifier-webhook` (gunicorn, 2 workers) behind a TLS-terminating proxy.

The proxy is played by the headers an ingress sets (X-Forwarded-Proto/Host); metrics come
from the master, summed over the workers' files; SIGTERM stops it within the grace period.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from notifier.devstack.ports import free_port
from tests.fixtures.waiting import wait_until
from tests.integration.webhook.test_webhook_kafka import read_records
from tests.integration.webhook.webhook_support import TOKEN, signature, status_params

pytestmark = pytest.mark.integration

GRACE_SECONDS = 5
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
STATUS = "/webhook/status?mid=1"


@dataclass
class Webhook:
    process: subprocess.Popen[str]
    base: str
    metrics: str
    metrics_dir: Path
    topic: str
    logs: queue.Queue[dict[str, Any]]

    def post(self, path: str, params: dict[str, str], signed_url: str) -> int:
        request = urllib.request.Request(
            self.base + path,
            data=urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature(signed_url, params), **PROXY_HEADERS},
        )
        return _status_of(request)

    def get(self, path: str) -> int:
        return _status_of(urllib.request.Request(self.base + path))


def _status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def _read_lines(stream: IO[str], lines: queue.Queue[dict[str, Any]]) -> None:
    for line in stream:
        try:
            lines.put(json.loads(line))
        except ValueError:
            lines.put({"msg": line.rstrip()})


@pytest.fixture
def webhook(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> Iterator[Webhook]:
    topic = topic_factory("webhook-gunicorn")
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    # A previous run's file: the master must empty the directory before the workers start.
    (metrics_dir / "counter_1.db").write_bytes(b"not a metrics file")
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "PUBLIC_WEBHOOK_URL"}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        KAFKA_TOPIC_EVENTS=topic,
        TWILIO_AUTH_TOKEN=TOKEN,
        HTTP_PORT=str(port),
        METRICS_PORT=str(metrics_port),
        WEBHOOK_TRUSTED_PROXY_COUNT="1",
        WEB_CONCURRENCY="2",
        WEBHOOK_GRACE_SECONDS=str(GRACE_SECONDS),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    script = Path(sys.executable).parent / "notifier-webhook"
    process = subprocess.Popen(
        [str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    logs: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, logs), daemon=True).start()
    hook = Webhook(
        process,
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{metrics_port}",
        metrics_dir,
        topic,
        logs,
    )
    try:

        def healthy() -> bool:
            assert process.poll() is None, f"notifier-webhook exited with {process.returncode}"
            try:
                return hook.get("/healthz") == 200
            except OSError:
                return False

        wait_until(healthy, timeout=20, message="notifier-webhook answering /healthz")
        yield hook
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def requests_total(metrics_url: str, route: str) -> float:
    with urllib.request.urlopen(metrics_url + "/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "notifier_webhook_requests"
        for sample in family.samples
        if sample.name == "notifier_webhook_requests_total" and sample.labels["route"] == route
    )


def per_worker_counts(metrics_dir: Path, route: str, scratch: Path) -> dict[str, float]:
    """requests_total{route} as each worker's own file has it (pid -> count)."""
    counts: dict[str, float] = {}
    for file in metrics_dir.glob("counter_*.db"):
        alone = scratch / file.stem
        alone.mkdir(exist_ok=True)
        shutil.copy(file, alone / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        labels = {"route": route, "code": "200"}
        value = registry.get_sample_value("notifier_webhook_requests_total", labels)
        counts[file.stem.removeprefix("counter_")] = value or 0.0
    return counts


def test_behind_a_tls_terminating_proxy_the_https_signature_is_the_valid_one(
    webhook: Webhook, kafka_bootstrap: str
) -> None:
    params = status_params()
    assert webhook.post(STATUS, params, "https://hooks.example.com" + STATUS) == 200
    assert webhook.post(STATUS, params, "http://hooks.example.com" + STATUS) == 403
    assert webhook.post(STATUS, params, f"{webhook.base}{STATUS}") == 403
    [record] = read_records(kafka_bootstrap, webhook.topic, 1)
    assert record.key() == b"1"
    assert webhook.get("/readyz") == 200


def test_metrics_are_summed_over_the_workers_and_sigterm_stops_it_in_time(
    webhook: Webhook, tmp_path: Path
) -> None:
    sent = 0

    def both_workers_served() -> bool:
        nonlocal sent
        # Concurrent connections, so that both workers accept some.
        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda _: webhook.get("/healthz"), range(64)))
        assert set(codes) == {200}
        sent += len(codes)
        counts = per_worker_counts(webhook.metrics_dir, "healthz", tmp_path)
        return sum(1 for count in counts.values() if count > 0) >= 2

    wait_until(both_workers_served, timeout=20, interval=0, message="both workers serving")
    # Every request the fixture and the test made, whichever worker answered it.
    wait_until(lambda: requests_total(webhook.metrics, "healthz") >= sent + 1, timeout=5)
    assert requests_total(webhook.metrics, "healthz") == sum(
        per_worker_counts(webhook.metrics_dir, "healthz", tmp_path).values()
    )

    # A worker killed outright is replaced; what it counted stays in the sum.
    before = requests_total(webhook.metrics, "healthz")
    victim = next(iter(per_worker_counts(webhook.metrics_dir, "healthz", tmp_path)))
    os.kill(int(victim), signal.SIGKILL)

    def replaced() -> bool:
        pids = {file.stem.removeprefix("counter_") for file in webhook.metrics_dir.glob("*.db")}
        return len(pids - {victim}) >= 2

    wait_until(replaced, timeout=15, message="a new worker in place of the killed one")
    assert webhook.get("/healthz") == 200
    assert requests_total(webhook.metrics, "healthz") >= before + 1

    webhook.process.send_signal(signal.SIGTERM)
    assert webhook.process.wait(timeout=GRACE_SECONDS + 5) == 0
    seen: list[dict[str, Any]] = []
    while not webhook.logs.empty():
        seen.append(webhook.logs.get())
    assert "webhook stopped" in [line.get("msg") for line in seen]
    # The only error is gunicorn's report of the worker we killed.
    errors = [line for line in seen if line.get("level") in ("ERROR", "CRITICAL")]
    assert all(victim in str(line.get("msg")) for line in errors), errors


def test_a_master_killed_outright_takes_its_workers_along_and_frees_the_port(
    webhook: Webhook,
) -> None:
    """SIGKILL to the master (a crash; the chaos run does it): its workers must not live on
    holding the listening socket while they drain their connections, or the restarted
    webhook cannot bind the port ("Connection in use") and crash-loops meanwhile."""
    master = webhook.process.pid
    workers = wait_until(lambda: len(pids := _children(master)) == 2 and pids,
                         timeout=10, message="two workers")  # fmt: skip
    port = int(webhook.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        # A worker holds this connection: one answered request kept alive, and the next
        # one only half sent (a slow caller), as callbacks arriving at the crash would be.
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: hooks\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        client.sendall(b"POST /webhook/status?mid=1 HTTP/1.1\r\nHost: hooks\r\n"
                       b"Content-Type: application/x-www-form-urlencoded\r\n"
                       b"Content-Length: 100\r\n\r\nMessageSid=SM")  # fmt: skip
        os.kill(master, signal.SIGKILL)
        webhook.process.wait(5)
        wait_until(lambda: not any(_alive(pid) for pid in workers), timeout=1.5,
                   message="the workers to die with their master")  # fmt: skip
        # Within the same bound: the last holder of the listening socket may be a moment
        # behind the workers seen (a fresh clone's run once found it still bound).
        wait_until(lambda: _bindable(port), timeout=1.5, message="the port to be free")


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's exit status may wait for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _bindable(port: int) -> bool:
    """Whether a new master could bind the port now (as gunicorn does, SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True
