"""One stack of real processes per e2e module, on a fresh database.

The gateway listens on 9090 because the seed's grpcurl examples and Go client
dial localhost:9090 verbatim.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.common.migrate import apply_migrations
from notifier.devstack.ports import port_is_open
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database
from tests.fixtures.stack import Stack, StackOptions, run_stack

SEED_PORT = 9090


@pytest.fixture(scope="module")
def stack(pg_server_url: str, kafka_bootstrap: str) -> Iterator[Stack]:
    if port_is_open("127.0.0.1", SEED_PORT):
        pytest.fail(
            f"port {SEED_PORT} is taken (is `make run` running?): the seed's examples "
            "dial localhost:9090, so the e2e gateway needs it"
        )
    with created_database(pg_server_url) as url:
        apply_migrations(url, MIGRATIONS_DIR)
        yield from run_stack(url, kafka_bootstrap, StackOptions(grpc_port=SEED_PORT))
