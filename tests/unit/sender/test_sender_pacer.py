"""Global slots: leased in runs for the workers waiting, spaced evenly, bounded ahead."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from notifier.sender.pacer import SlotPacer
from tests.fixtures.waiting import wait_until
from tests.unit.sender.sender_fakes import FakeClock, FakeLeaser


def never() -> bool:
    return False


def after(checks: int) -> Callable[[], bool]:
    """A `cancelled` that turns true on its `checks`-th call."""
    seen = 0

    def cancelled() -> bool:
        nonlocal seen
        seen += 1
        return seen >= checks

    return cancelled


def pacer(clock: FakeClock, leaser: FakeLeaser, run_seconds: float = 0.04) -> SlotPacer:
    return SlotPacer(leaser, leaser.spacing, run_seconds, late_tolerance=0.005, clock=clock)


def test_a_lone_worker_leases_one_slot_just_after_the_lead() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01)
    slots = pacer(clock, leaser)
    # An idle timeline starts 10 ms ahead, so the answer is back before the slot.
    assert slots.acquire(never) == pytest.approx(100.01)
    assert leaser.leases == [1]


def test_the_next_lease_continues_where_the_last_ended() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01)
    slots = pacer(clock, leaser)
    first = slots.acquire(never)
    second = slots.acquire(never)
    assert second is not None and first is not None
    assert second - first == pytest.approx(0.01)


def test_slots_another_replica_leased_push_ours_back() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01, next_slot=100.5)  # others hold 0.5 s of slots
    assert pacer(clock, leaser).acquire(never) == pytest.approx(100.5)


def test_a_replica_holds_at_most_two_runs_it_has_not_used() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01)
    slots = pacer(clock, leaser, run_seconds=0.02)  # runs of 2 slots
    held = [slots.acquire(never) for _ in range(4)]
    assert None not in held
    assert slots.acquire(after(2)) is None  # a fifth would lease beyond two runs: it waits
    slots.release("used")
    assert slots.acquire(never) is not None


def test_a_failed_lease_pauses_leasing_until_its_backoff_has_passed() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01, failures=1)
    slots = pacer(clock, leaser)
    assert slots.acquire(after(2)) is None
    assert leaser.leases == []
    clock.advance(10.0)
    assert slots.acquire(never) == pytest.approx(110.01)


def test_concurrent_workers_get_distinct_evenly_spaced_slots() -> None:
    spacing = 0.002
    leaser = FakeLeaser(time.monotonic, spacing=spacing, latency=0.003)
    slots = SlotPacer(leaser, spacing, 0.02, late_tolerance=1.0)
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            slot = slots.acquire(never)
            assert slot is not None
            with lock:
                taken.append(slot)
            # Hold the slot until its time, as a worker does, so others queue up meanwhile.
            threading.Event().wait(max(0.0, slot - time.monotonic()))
            slots.release("used")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: len(taken) == 80, timeout=10)
    for t in threads:
        t.join(timeout=5)
    taken.sort()
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    # Each run is placed from its lease's round trip, so runs may sit closer by that
    # trip's jitter (well under a millisecond here); the rate_slots docstring budgets it.
    assert min(gaps) > spacing - 0.0002
    # Workers that queued up during a lease's round trip were served by one run.
    assert max(leaser.leases) > 1


def test_slots_are_placed_on_our_clock_whatever_the_database_clock_reads() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01, clock_offset=1_700_000_000.0)
    slots = pacer(clock, leaser)
    assert slots.acquire(never) == pytest.approx(100.01)


def test_a_slow_answer_does_not_move_its_slots() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01, clock_offset=5000.0)
    slots = pacer(clock, leaser)
    assert slots.acquire(never) == pytest.approx(100.01)  # a 0 s round trip: exact offset
    slots.release("used")
    clock.advance(1.0)
    # Answers now take 40 ms, all of it after the database read its clock. The first such
    # lease's slot (10 ms lead) has passed when it arrives and is given up; the next lease
    # asks for a 60 ms lead. Placed by its own trip's midpoint, its slot would move 20 ms
    # late; the fast sample keeps it where the database put it: 101.04 + 0.06.
    leaser.stall_after = 0.04
    assert slots.acquire(never) == pytest.approx(101.10)
    assert leaser.leases == [1, 1, 1]


def test_clock_readings_before_the_first_lease_place_it_despite_a_slow_first_answer() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01, clock_offset=5000.0)
    # The first lease is slow before the database reads its clock (a cold connection
    # planning the statement): placed by its own round trip's midpoint, its slot would
    # land 15 ms early on our clock, among another replica's slots.
    leaser.stall = 0.03
    slots = pacer(clock, leaser)
    assert slots.acquire(never) == pytest.approx(100.04)  # read at 100.03, 10 ms lead
    assert leaser.clock_reads == 4


def test_the_clock_is_read_again_after_an_idle_spell() -> None:
    clock = FakeClock(100.0)
    leaser = FakeLeaser(clock, spacing=0.01)
    slots = pacer(clock, leaser)
    slots.acquire(never)
    slots.release("used")
    slots.acquire(never)
    slots.release("used")
    assert leaser.clock_reads == 4  # recent samples: the lease's own reading is enough
    clock.advance(31.0)  # older than the offset's samples may be
    slots.acquire(never)
    assert leaser.clock_reads == 8
