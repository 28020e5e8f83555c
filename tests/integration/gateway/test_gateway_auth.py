"""Bearer tokens on a real gateway (PostgreSQL, broker), over grpc and with real grpcurl.

Without an accepted token a WhatsAppService call is UNAUTHENTICATED before anything else
(even a malformed request), writes nothing, and no token ever reaches the logs; health and
reflection stay open.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from gateway_support import gateway_settings, row_counts
from grpc_health.v1 import health_pb2, health_pb2_grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.main import RunningGateway, start_gateway
from tests.fixtures.waiting import wait_until
from tests.fuzz.grpcurl_cases import grpcurl_executable

pytestmark = pytest.mark.integration

TOKEN = secrets.token_hex(16)
NEXT_TOKEN = secrets.token_hex(16)  # a second accepted token, as while rotating
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
SEND = {
    "phone_number": "+447700900123",
    "template_id": "order_confirmation",
    "parameters": {"order_id": "ORD-AUTH"},
    "order_id": "ORD-AUTH",
}


@pytest.fixture(scope="module")
def auth_gateway(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str
) -> Iterator[RunningGateway]:
    settings = gateway_settings(
        gateway_database_url, kafka_bootstrap, outbound_topic, auth_tokens=(TOKEN, NEXT_TOKEN)
    )
    running = start_gateway(settings, serve_metrics=False)
    yield running
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def channel(auth_gateway: RunningGateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"localhost:{auth_gateway.port}") as chan:
        yield chan


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def send(channel: grpc.Channel, metadata: Any = (), **fields: Any) -> grpc.StatusCode:
    stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
    request = whatsapp_pb2.SendTemplateMessageRequest(**{**SEND, **fields})
    try:
        stub.SendTemplateMessage(request, timeout=10, metadata=metadata)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_a_call_without_an_accepted_token_is_unauthenticated_and_writes_nothing(
    channel: grpc.Channel, gateway_database_url: str
) -> None:
    before = row_counts(gateway_database_url)
    refused: list[Any] = [
        (),
        bearer("x" * 32),
        bearer(TOKEN[:-1]),
        bearer(TOKEN + "0"),
        (("authorization", f"Basic {TOKEN}"),),
        (("authorization", TOKEN),),
        (("authorization", "Bearer "),),
        (("x-api-key", TOKEN),),
        (("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")),
    ]
    for metadata in refused:
        assert send(channel, metadata) == UNAUTHENTICATED, metadata
    assert row_counts(gateway_database_url) == before
    assert send(channel, bearer(TOKEN)) == grpc.StatusCode.OK
    assert send(channel, (("authorization", f"bearer  {NEXT_TOKEN} "),)) == grpc.StatusCode.OK


def test_authentication_comes_before_parsing_and_validation(channel: grpc.Channel) -> None:
    # An invalid request is UNAUTHENTICATED without a token, INVALID_ARGUMENT with one.
    assert send(channel, (), phone_number="not a number") == UNAUTHENTICATED
    assert send(channel, bearer(TOKEN), phone_number="not a number") == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    raw = channel.unary_unary("/whatsapp.WhatsAppService/GetMessage")
    for metadata, code in (
        ((), UNAUTHENTICATED),
        (bearer(TOKEN), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\x08" + b"\xff" * 11, timeout=10, metadata=metadata)  # not a valid message
        assert caught.value.code() == code
    with pytest.raises(grpc.RpcError) as caught:
        send_stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        send_stub.GetMessage(whatsapp_pb2.GetMessageRequest(message_id=1), timeout=10)
    assert caught.value.details() == (
        "missing bearer token: send the metadata 'authorization: Bearer <token>'"
    )
    assert TOKEN not in caught.value.details()


def test_health_and_reflection_stay_open(
    channel: grpc.Channel, auth_gateway: RunningGateway
) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    listed = grpcurl(auth_gateway.port, method="list")
    assert listed.returncode == 0, listed.stderr
    assert "whatsapp.WhatsAppService" in listed.stdout.split()


def test_grpcurl_needs_the_bearer_header(auth_gateway: RunningGateway) -> None:
    body = json.dumps({**SEND, "order_id": "ORD-GRPCURL"})
    method = "whatsapp.WhatsAppService/SendTemplateMessage"
    refused = grpcurl(auth_gateway.port, "-d", body, method=method)
    assert refused.returncode == 64 + UNAUTHENTICATED.value[0], refused.stderr
    assert "Unauthenticated" in refused.stderr
    header = ["-H", f"authorization: Bearer {TOKEN}"]
    accepted = grpcurl(auth_gateway.port, *header, "-d", body, method=method)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["status"] == "QUEUED"


def grpcurl(port: int, *args: str, method: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(grpcurl_executable()), "-plaintext", "-max-time", "10", *args, f"localhost:{port}"]
    if method is not None:
        argv.append(method)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_no_token_reaches_the_logs_of_the_gateway_process(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str, tmp_path: Path
) -> None:
    """The real `notifier-gateway` at DEBUG: refused and accepted calls, then SIGTERM; every
    byte it wrote to stdout and stderr is searched for the tokens, sent and accepted."""
    wrong = secrets.token_hex(16)
    env = {
        **os.environ,
        "DATABASE_URL": gateway_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_OUTBOUND": outbound_topic,
        "KAFKA_TOPIC_PARTITIONS": "1",
        "GRPC_PORT": "0",
        "METRICS_PORT": "0",
        "LOG_LEVEL": "DEBUG",
        "GRPC_AUTH_TOKENS": f"{TOKEN},{NEXT_TOKEN}",
    }
    stdout, stderr = tmp_path / "gateway.stdout", tmp_path / "gateway.stderr"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "notifier.gateway.main"], env=env, stdout=out, stderr=err
        )
    try:
        port = wait_until(lambda: serving_port(stdout, process), timeout=60,
                          message="the gateway to log 'gateway serving'")  # fmt: skip
        with grpc.insecure_channel(f"localhost:{port}") as chan:
            assert send(chan, ()) == UNAUTHENTICATED
            assert send(chan, bearer(wrong)) == UNAUTHENTICATED
            assert send(chan, bearer(TOKEN), order_id="ORD-LOGS") == grpc.StatusCode.OK
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    logged = stdout.read_text() + stderr.read_text()
    assert '"msg": "call refused: not authenticated"' in logged  # the refusals were logged
    assert '"auth": "bearer"' in logged
    for secret in (TOKEN, NEXT_TOKEN, wrong):
        assert secret not in logged


def serving_port(stdout: Path, process: subprocess.Popen[bytes]) -> int | None:
    assert process.poll() is None, "the gateway exited while starting"
    for line in stdout.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("msg") == "gateway serving":
            return int(entry["port"])
    return None
