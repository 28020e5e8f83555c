"""The gateway as its own process: SIGKILL between commit and publish loses nothing,
and SIGTERM shuts it down cleanly."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from gateway_support import (
    FAST_RELAY,
    TopicReader,
    gateway_settings,
    outbox_row,
    produce_marker,
    query,
    stamped,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.main import start_gateway
from notifier.gateway.settings import FAULT_AFTER_COMMIT
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration


class GatewayProcess:
    """`python -m notifier.gateway.main` with its JSON log lines read on a thread."""

    def __init__(self, env: dict[str, str], stderr_path: Path) -> None:
        self._stderr = stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notifier.gateway.main"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                continue

    def wait_for_port(self, timeout: float = 30.0) -> int:
        def serving() -> int | None:
            while not self.lines.empty():
                entry = self.lines.get()
                if entry.get("msg") == "gateway serving":
                    return int(entry["port"])
            assert self.process.poll() is None, "the gateway exited while starting"
            return None

        return wait_until(serving, timeout, message="the gateway to log 'gateway serving'")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._stderr.close()


def gateway_env(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": gateway_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_OUTBOUND": outbound_topic,
        "KAFKA_TOPIC_PARTITIONS": "1",
        "GRPC_PORT": "0",
        "METRICS_PORT": "0",
    }


@pytest.fixture
def killable_gateway(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str, tmp_path: Path
) -> Iterator[GatewayProcess]:
    env = gateway_env(gateway_database_url, kafka_bootstrap, outbound_topic)
    env["NOTIFIER_FAULT_POINT"] = FAULT_AFTER_COMMIT
    gateway = GatewayProcess(env, tmp_path / "gateway.stderr")
    yield gateway
    gateway.close()


def test_a_gateway_killed_between_commit_and_publish_loses_nothing(
    killable_gateway: GatewayProcess,
    gateway_database_url: str,
    kafka_bootstrap: str,
    outbound_topic: str,
) -> None:
    port = killable_gateway.wait_for_port()
    order = f"ORD-{random_suffix()}"
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.SendTemplateMessage(
                whatsapp_pb2.SendTemplateMessageRequest(
                    phone_number="+447700900300",
                    template_id="order_confirmation",
                    parameters={"order_id": order},
                    order_id=order,
                ),
                timeout=10,
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert killable_gateway.process.wait(timeout=10) == -signal.SIGKILL

    # The accept was committed, its outbox entry is unconfirmed...
    ((message_id,),) = query(
        gateway_database_url, "SELECT id FROM messages WHERE order_id = %s", order
    )
    assert outbox_row(gateway_database_url, message_id) == (None, 0)
    # ...and nothing reached the topic: one partition, so reading up to a record
    # produced now shows everything produced before it.
    reader = TopicReader(kafka_bootstrap, outbound_topic)
    try:
        marker = produce_marker(kafka_bootstrap, outbound_topic)
        reader.wait_for(marker)
        assert message_id not in reader.ids()

        settings = gateway_settings(
            gateway_database_url, kafka_bootstrap, outbound_topic, **FAST_RELAY
        )
        gateway = start_gateway(settings, serve_metrics=False)
        try:
            record = reader.wait_for(message_id)
            wait_until(lambda: stamped(gateway_database_url, message_id))
        finally:
            gateway.stop(grace=1.0)
    finally:
        reader.close()
    assert record.key == b"+447700900300"
    assert record.command.content_variables == {"1": order}


def test_sigterm_finishes_and_exits_cleanly(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str, tmp_path: Path
) -> None:
    env = gateway_env(gateway_database_url, kafka_bootstrap, outbound_topic)
    env["GRPC_GRACE_SECONDS"] = "2"
    gateway = GatewayProcess(env, tmp_path / "gateway.stderr")
    try:
        port = gateway.wait_for_port()
        with grpc.insecure_channel(f"localhost:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
            order = f"ORD-{random_suffix()}"
            whatsapp_pb2_grpc.WhatsAppServiceStub(channel).SendTemplateMessage(
                whatsapp_pb2.SendTemplateMessageRequest(
                    phone_number="+447700900301",
                    template_id="order_confirmation",
                    parameters={"order_id": order},
                    order_id=order,
                ),
                timeout=10,
            )
        gateway.process.send_signal(signal.SIGTERM)
        assert gateway.process.wait(timeout=30) == 0
        logged = []
        while not gateway.lines.empty():
            logged.append(gateway.lines.get().get("msg"))
        assert "gateway stopped" in logged
        # The publish in flight was flushed and stamped before the process left.
        ((message_id,),) = query(
            gateway_database_url, "SELECT id FROM messages WHERE order_id = %s", order
        )
        assert stamped(gateway_database_url, message_id)
    finally:
        gateway.close()
