"""The broker loses the outbound topic with its records (an in-memory Tansu restarted):
the gateway creates it again and publishes every message still QUEUED once more, and
nothing that already left QUEUED."""

from __future__ import annotations

import grpc
import pytest
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from gateway_support import FAST_RELAY, TopicReader, gateway_settings, query

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.devstack.tansu import TansuBroker
from notifier.gateway.main import start_gateway
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.integration


_OUTBOX = (
    "SELECT message_id, published_at IS NOT NULL, publish_count FROM outbox "
    "WHERE message_id = ANY(%s)"
)


def _send(stub: object, order: str) -> int:
    response = stub.SendTemplateMessage(  # type: ignore[attr-defined]
        whatsapp_pb2.SendTemplateMessageRequest(
            phone_number="+447700900300",
            template_id="order_confirmation",
            parameters={"order_id": order},
            order_id=order,
        ),
        timeout=10,
    )
    return int(response.message_id)


def test_a_lost_outbound_topic_is_recreated_and_queued_messages_go_out_again(
    gateway_database_url: str, kafka_broker: TansuBroker
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"outbound.lost.{random_suffix()}"
    settings = gateway_settings(gateway_database_url, bootstrap, topic, **FAST_RELAY)
    gateway = start_gateway(settings, serve_metrics=False)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
            order = f"ORD-{random_suffix()}"
            ids = [_send(stub, order) for _ in range(6)]
        reader = TopicReader(bootstrap, topic)
        try:
            wait_until(lambda: set(ids) <= set(reader.ids()), message="the first publishes")
        finally:
            reader.close()
        wait_until(
            lambda: query(gateway_database_url, "SELECT count(*) FROM outbox WHERE "
                          "message_id = ANY(%s) AND published_at IS NOT NULL", ids)[0][0] == 6,
            message="every outbox row stamped",
        )  # fmt: skip
        # Two of them were consumed and sent meanwhile; the rest still wait in the topic.
        sent = ids[:2]
        mark_sent = "UPDATE messages SET status = 'SENDING' WHERE id = ANY(%s) RETURNING id"
        query(gateway_database_url, mark_sent, sent)

        kafka_broker.restart()  # the topic and its records are gone
        admin = AdminClient({"bootstrap.servers": bootstrap})
        wait_until(lambda: topic in admin.list_topics(timeout=5).topics, timeout=30,
                   message="the gateway to create its topic again")  # fmt: skip

        reader = TopicReader(bootstrap, topic)
        try:
            queued = set(ids[2:])
            wait_until(lambda: queued <= set(reader.ids()), timeout=30,
                       message=lambda: f"QUEUED messages published again; topic has "
                       f"{reader.ids()}, outbox "
                       f"{query(gateway_database_url, _OUTBOX, ids)}")  # fmt: skip
            assert not set(sent) & set(reader.ids()), "a message past QUEUED went out again"
        finally:
            reader.close()
    finally:
        gateway.stop(grace=1.0)
