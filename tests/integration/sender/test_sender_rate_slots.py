"""Slot leases in PostgreSQL: concurrent leases never overlap, and idle time is not banked."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from notifier.common.db import Database
from notifier.sender.pacer import Lease
from notifier.sender.rate_slots import PostgresSlotLeaser
from tests.integration.sender.sender_support import random_number

pytestmark = pytest.mark.integration

SPACING = 0.001


@pytest.fixture
def pools(database_url: str) -> Iterator[list[Database]]:
    """Four pools, as four replicas would have."""
    made = [Database(database_url, "sender-tests", max_connections=2) for _ in range(4)]
    yield made
    for pool in made:
        pool.close()


def test_concurrent_leases_from_several_replicas_never_overlap(pools: list[Database]) -> None:
    sender = f"whatsapp:{random_number('+1415')}"
    leased: list[tuple[Lease, int]] = []
    lock = threading.Lock()

    def replica(db: Database, sizes: list[int]) -> None:
        leaser = PostgresSlotLeaser(db, sender, SPACING)
        for count in sizes:
            lease = leaser.lease(count, lead=0.0)
            with lock:
                leased.append((lease, count))

    threads = [
        threading.Thread(target=replica, args=(db, [1 + (i + j) % 5 for j in range(25)]))
        for i, db in enumerate(pools * 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(leased) == 200
    runs = sorted((lease.first_at, count) for lease, count in leased)
    for (first, count), (following, _) in itertools.pairwise(runs):
        assert following >= first + count * SPACING - 1e-6  # timestamps keep microseconds
    # Busy leasers left no gap: the runs follow each other back to back.
    span = runs[-1][0] + runs[-1][1] * SPACING - runs[0][0]
    assert span < sum(count for _, count in runs) * SPACING + 0.5


def test_an_idle_timeline_restarts_at_now_plus_the_lead(pools: list[Database]) -> None:
    leaser = PostgresSlotLeaser(pools[0], f"whatsapp:{random_number('+1415')}", 0.05)
    first = leaser.lease(3, lead=0.02)
    assert first.first_at - first.read_at == pytest.approx(0.02, abs=1e-5)
    second = leaser.lease(1, lead=0.02)
    # The next run starts where the first ended (3 x 50 ms), not at now + lead.
    assert second.first_at == pytest.approx(first.first_at + 0.15, abs=1e-5)
    assert first.sent_at <= first.received_at


def test_a_clock_reading_is_the_databases_clock_within_its_round_trip(
    pools: list[Database],
) -> None:
    # The wall clock as our clock: PostgreSQL reads the same machine's clock.
    leaser = PostgresSlotLeaser(pools[0], f"whatsapp:{random_number('+1415')}", 0.05, time.time)
    for _ in range(5):
        reading = leaser.read_clock()
        assert reading.sent_at <= reading.read_at <= reading.received_at
        assert reading.received_at - reading.sent_at < 1.0


def test_a_leases_clock_reading_lies_within_its_round_trip(pools: list[Database]) -> None:
    leaser = PostgresSlotLeaser(pools[0], f"whatsapp:{random_number('+1415')}", 0.05, time.time)
    leaser.lease(1, lead=0.0)  # creates the sender's row
    for _ in range(5):
        lease = leaser.lease(1, lead=0.0)
        assert lease.sent_at <= lease.read_at <= lease.received_at <= lease.first_at + 1.0
