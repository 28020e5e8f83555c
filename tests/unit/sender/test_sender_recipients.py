"""Per-recipient FIFO, the pair limit and retry times, on a fake clock."""

from __future__ import annotations

import pytest

from notifier.sender.ratelimit import RecipientBuckets
from notifier.sender.recipients import Job, RecipientQueues
from tests.unit.sender.sender_fakes import command

ALICE = "+447700900001"
BOB = "+447700900002"


def job(message_id: int, to: str = ALICE, partition: int = 0) -> Job:
    return Job(command(message_id, to), ("out", partition), message_id)


def queues(interval: float = 6.0, burst: int = 1) -> RecipientQueues:
    return RecipientQueues(RecipientBuckets(interval, burst))


def start(q: RecipientQueues, now: float) -> Job | None:
    """What the scheduler does: pop, and charge the pair limit when the call starts."""
    started = q.pop_ready(now)
    if started is not None and started.attempts == 0:
        q.charge(started.recipient, now)
    return started


def test_a_recipients_messages_go_one_at_a_time_in_order() -> None:
    q = queues(interval=0.0)
    first, second = job(1), job(2)
    q.add(first, 0.0)
    q.add(second, 0.0)
    assert q.pop_ready(0.0) is first
    assert q.pop_ready(0.0) is None  # the first is still being sent
    q.finish(first, 0.1)
    assert q.pop_ready(0.1) is second
    assert len(q) == 0


def test_the_pair_limit_spaces_a_recipients_messages_by_the_interval() -> None:
    q = queues(interval=6.0, burst=1)
    first, second = job(1), job(2)
    q.add(first, 0.0)
    q.add(second, 0.0)
    assert start(q, 0.0) is first
    q.finish(first, 0.3)
    assert q.pop_ready(0.3) is None
    assert q.next_due() == pytest.approx(6.0)
    assert q.pop_ready(5.99) is None
    assert start(q, 6.0) is second
    assert second.pair_wait == pytest.approx(5.7)


def test_a_burst_goes_out_back_to_back() -> None:
    q = queues(interval=6.0, burst=3)
    jobs = [job(i) for i in range(4)]
    for j in jobs:
        q.add(j, 0.0)
    now = 0.0
    for expected in jobs[:3]:
        assert start(q, now) is expected
        q.finish(expected, now)
        now += 0.25
    assert q.pop_ready(now) is None


def test_a_waiting_recipient_never_holds_up_another() -> None:
    q = queues(interval=6.0, burst=1)
    a1, a2, b1 = job(1, ALICE), job(2, ALICE), job(3, BOB)
    for j in (a1, a2, b1):
        q.add(j, 0.0)
    assert start(q, 0.0) is a1
    assert start(q, 0.0) is b1
    q.finish(a1, 0.2)
    assert q.pop_ready(0.2) is None  # a2 waits for the pair limit; nothing else is queued


def test_a_retry_keeps_its_place_and_waits_for_its_backoff() -> None:
    q = queues(interval=0.0)
    a1, a2, b1 = job(1, ALICE), job(2, ALICE), job(3, BOB)
    for j in (a1, a2):
        q.add(j, 0.0)
    assert q.pop_ready(0.0) is a1
    a1.attempts = 1
    q.retry(a1, at=2.0)
    q.add(b1, 0.5)
    assert q.pop_ready(0.5) is b1  # Bob is not held up by Alice's backoff
    assert q.pop_ready(1.9) is None  # and a2 does not overtake a1
    assert q.pop_ready(2.0) is a1


def test_a_retry_is_not_charged_the_pair_limit_again() -> None:
    q = queues(interval=6.0, burst=1)
    first = job(1)
    q.add(first, 0.0)
    assert start(q, 0.0) is first
    first.attempts = 1
    q.retry(first, at=0.5)
    assert q.pop_ready(0.5) is first


def test_removing_a_partitions_jobs_leaves_the_others() -> None:
    q = queues(interval=0.0)
    keep, drop1, drop2 = job(1, ALICE, 0), job(2, BOB, 1), job(3, BOB, 1)
    for j in (keep, drop1, drop2):
        q.add(j, 0.0)
    removed = q.remove(lambda j: j.partition == ("out", 1))
    assert removed == [drop1, drop2]
    assert len(q) == 1
    assert q.pop_ready(0.0) is keep
    assert q.pop_ready(0.0) is None


def test_pruning_keeps_the_buckets_of_recipients_with_work() -> None:
    q = queues(interval=1.0, burst=1)
    a1, a2, b1 = job(1, ALICE), job(2, ALICE), job(3, BOB)
    for j in (a1, b1):
        q.add(j, 0.0)
        assert start(q, 0.0) is j
        q.finish(j, 0.0)
    q.add(a2, 0.5)
    assert q.prune(10.0) == 1  # Bob's full, idle bucket goes; Alice has a2 queued
