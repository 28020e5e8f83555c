"""What the operator writes, a running gateway uses without a restart: a new template is
accepted within a few seconds, a changed one takes its new parameters, and a deleted one
(disabled by the finalizer) is refused with FAILED_PRECONDITION."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import kopf
import pytest

from notifier.common.config import DatabaseSettings, KafkaSettings, Topics
from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.main import RunningGateway, start_gateway
from notifier.gateway.settings import GatewaySettings
from tests.fixtures.waiting import random_suffix, wait_until
from tests.integration.operator.operator_calls import a_resource, apply, changed, delete

pytestmark = pytest.mark.integration

REFRESH_SECONDS = 0.5


@pytest.fixture
def gateway(database_url: str, kafka_bootstrap: str) -> Iterator[RunningGateway]:
    settings = dataclasses.replace(
        GatewaySettings(
            database=DatabaseSettings(database_url),
            kafka=KafkaSettings(
                kafka_bootstrap, topics=Topics(outbound=f"op.gw.{random_suffix()}"), partitions=1
            ),
        ),
        grpc_port=0,
        metrics_port=0,
        max_workers=4,
        grace_seconds=1.0,
        template_refresh_seconds=REFRESH_SECONDS,
    )
    running = start_gateway(settings, serve_metrics=False)
    yield running
    running.stop(grace=1.0)


def _send(port: int, template_id: str, **parameters: str) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        try:
            stub.SendTemplateMessage(
                whatsapp_pb2.SendTemplateMessageRequest(
                    phone_number="+447700900400", template_id=template_id, parameters=parameters
                ),
                timeout=5,
            )
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_the_gateway_follows_what_the_operator_stores(
    gateway: RunningGateway, memo: kopf.Memo
) -> None:
    resource = a_resource()
    template_id = resource["spec"]["templateId"]
    assert _send(gateway.port, template_id, order_id="ORD-1") == grpc.StatusCode.NOT_FOUND

    status = apply(resource, memo)["status"]
    wait_until(lambda: _send(gateway.port, template_id, order_id="ORD-1") == grpc.StatusCode.OK,
               timeout=5, message="the gateway to accept the new template")  # fmt: skip

    # A new required parameter: the old request is now incomplete.
    parameters = [
        *resource["spec"]["parameters"],
        {"name": "slot", "required": True, "maxLength": 8},
    ]
    body = "Order {{order_id}} is at locker {{locker}} from {{slot}}."
    apply(changed(resource, status, parameters=parameters, body=body), memo)
    wait_until(
        lambda: (
            _send(gateway.port, template_id, order_id="ORD-1") == grpc.StatusCode.INVALID_ARGUMENT
        ),
        timeout=5,
        message="the gateway to require the new parameter",
    )
    assert _send(gateway.port, template_id, order_id="ORD-1", slot="9-12") == grpc.StatusCode.OK

    delete(resource, memo)
    wait_until(
        lambda: (
            _send(gateway.port, template_id, order_id="ORD-1", slot="9-12")
            == grpc.StatusCode.FAILED_PRECONDITION
        ),
        timeout=5,
        message="the gateway to refuse the deleted (disabled) template",
    )
