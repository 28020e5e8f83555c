"""The interceptor over a real server: our errors keep their code and message, a bug
becomes INTERNAL with only a ref, and the traceback is logged once under that ref."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from gateway_support import gateway_settings
from grpc_health.v1 import health

from notifier.common.errors import TransientError
from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.server import build_server

pytestmark = pytest.mark.integration


class BrokenServicer(whatsapp_pb2_grpc.WhatsAppServiceServicer):
    def GetMessage(self, request: Any, context: Any) -> Any:
        raise RuntimeError("secret detail +447700900123")

    def ListMessages(self, request: Any, context: Any) -> Any:
        raise TransientError("PostgreSQL unavailable")


@pytest.fixture(scope="module")
def stub() -> Iterator[whatsapp_pb2_grpc.WhatsAppServiceStub]:
    settings = gateway_settings("postgresql://unused", "unused:9092", "unused")
    server, port = build_server(settings, BrokenServicer(), health.HealthServicer())
    server.start()
    try:
        with grpc.insecure_channel(f"localhost:{port}") as channel:
            yield whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
    finally:
        server.stop(0)


def test_a_bug_is_internal_with_only_a_ref(
    stub: whatsapp_pb2_grpc.WhatsAppServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.RpcError) as caught:
        stub.GetMessage(whatsapp_pb2.GetMessageRequest(message_id=1), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    match = re.fullmatch(r"internal error \(ref ([0-9a-f]{12})\)", caught.value.details())
    assert match is not None
    logged = [r for r in caplog.records if getattr(r, "ref", None) == match.group(1)]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_a_transient_error_is_unavailable(stub: whatsapp_pb2_grpc.WhatsAppServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListMessages(whatsapp_pb2.ListMessagesRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "PostgreSQL unavailable"


def test_an_unimplemented_method_stays_unimplemented(
    stub: whatsapp_pb2_grpc.WhatsAppServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.SendTemplateMessage(whatsapp_pb2.SendTemplateMessageRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
