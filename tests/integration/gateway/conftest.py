"""Fixtures for the gateway's integration tests: a private database, topic and gateway
per module, a channel to it, and a reader of its outbound topic."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from gateway_support import TopicReader, gateway_settings

from notifier.common.migrate import apply_migrations
from notifier.common.pb import whatsapp_pb2_grpc
from notifier.devstack.tansu import delete_topics
from notifier.gateway.main import RunningGateway, start_gateway
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database
from tests.fixtures.waiting import random_suffix


@pytest.fixture(scope="module")
def gateway_database_url(pg_server_url: str) -> Iterator[str]:
    with created_database(pg_server_url) as url:
        apply_migrations(url, MIGRATIONS_DIR)
        yield url


@pytest.fixture(scope="module")
def outbound_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A name only; the gateway creates the topic (one partition) when it starts."""
    name = f"gateway.outbound.{random_suffix()}"
    yield name
    delete_topics(kafka_bootstrap, [name])


@pytest.fixture(scope="module")
def gateway(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str
) -> Iterator[RunningGateway]:
    running = start_gateway(gateway_settings(gateway_database_url, kafka_bootstrap, outbound_topic))
    yield running
    running.stop(grace=1.0)


@pytest.fixture(scope="module")
def channel(gateway: RunningGateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"localhost:{gateway.port}") as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> whatsapp_pb2_grpc.WhatsAppServiceStub:
    return whatsapp_pb2_grpc.WhatsAppServiceStub(channel)


@pytest.fixture(scope="module")
def topic(
    gateway: RunningGateway, kafka_bootstrap: str, outbound_topic: str
) -> Iterator[TopicReader]:
    reader = TopicReader(kafka_bootstrap, outbound_topic)
    yield reader
    reader.close()
