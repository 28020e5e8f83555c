"""Limits of a real gateway: a request over GRPC_MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED and
writes nothing; open streams beyond GRPC_MAX_OPEN_STREAMS are refused, and idle ones never
keep unary calls waiting."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from gateway_support import TopicReader, gateway_settings, query, row_counts
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.main import RunningGateway
from notifier.gateway.server import build_server, set_serving
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration


def send_request(**fields: Any) -> whatsapp_pb2.SendTemplateMessageRequest:
    return whatsapp_pb2.SendTemplateMessageRequest(
        **{
            "phone_number": "+447700900123",
            "template_id": "order_confirmation",
            "parameters": {"order_id": "ORD-LIMIT"},
            **fields,
        }
    )


def test_an_oversized_request_is_resource_exhausted_and_writes_nothing(
    gateway: RunningGateway,
    stub: whatsapp_pb2_grpc.WhatsAppServiceStub,
    topic: TopicReader,
    gateway_database_url: str,
) -> None:
    limit = gateway.settings.max_message_bytes
    assert limit == 1024 * 1024  # GRPC_MAX_MESSAGE_BYTES' default
    before = row_counts(gateway_database_url)
    oversized = send_request(order_id="ORD-BIG", customer_id="c" * limit)
    assert oversized.ByteSize() > limit
    with pytest.raises(grpc.RpcError) as caught:
        stub.SendTemplateMessage(oversized, timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert row_counts(gateway_database_url) == before
    # One partition: everything published before this accept is read before its record.
    accepted = stub.SendTemplateMessage(send_request(order_id="ORD-AFTER-BIG"), timeout=10)
    topic.wait_for(accepted.message_id)
    stored = {row[0] for row in query(gateway_database_url, "SELECT id FROM messages")}
    assert set(topic.ids()) <= stored  # every record is of a stored message


class Idle(whatsapp_pb2_grpc.WhatsAppServiceServicer):
    def GetMessage(self, request: Any, context: Any) -> Any:
        return whatsapp_pb2.GetMessageResponse(message=whatsapp_pb2.Message(message_id=1))


@pytest.fixture
def small_server() -> Iterator[tuple[int, int]]:
    """A server of 2 unary threads and 2 streams; yields (port, stream limit)."""
    settings = gateway_settings("postgresql://unused", "unused:9092", "unused",
                                max_workers=2, max_open_streams=2)  # fmt: skip
    health_servicer = health.HealthServicer()
    server, port = build_server(settings, Idle(), health_servicer)
    server.start()
    set_serving(health_servicer, serving=True)
    try:
        yield port, settings.max_open_streams
    finally:
        server.stop(0).wait()


def open_reflection_stream(channel: grpc.Channel) -> Any:
    """A reflection stream answered once and then left open and idle, as grpcurl's is."""
    requests: queue.Queue[Any] = queue.Queue()
    requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
    stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter(requests.get, None), timeout=30
    )
    next(stream)
    return stream


def test_streams_beyond_the_limit_are_refused_and_a_closed_one_frees_its_place(
    small_server: tuple[int, int],
) -> None:
    port, limit = small_server
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        streams = [open_reflection_stream(channel) for _ in range(limit)]
        try:
            with pytest.raises(grpc.RpcError) as caught:
                open_reflection_stream(channel)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "GRPC_MAX_OPEN_STREAMS" in (caught.value.details() or "")
            # Unary calls are served on their own threads meanwhile, several at once.
            for _ in range(5):
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=3
                )
                whatsapp_pb2_grpc.WhatsAppServiceStub(channel).GetMessage(
                    whatsapp_pb2.GetMessageRequest(message_id=1), timeout=3
                )
            streams.pop().cancel()
            # The cancelled stream's place is free again (released when the call ended).
            streams.append(wait_for_stream(channel))
        finally:
            for stream in streams:
                stream.cancel()


def wait_for_stream(channel: grpc.Channel) -> Any:
    """A cancelled call ends on the server a moment after the client cancels it."""

    def attempt() -> Any:
        try:
            return open_reflection_stream(channel)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
            return None

    return wait_until(attempt, timeout=10, message="a stream slot to be released")
