"""The token bucket, the per-recipient buckets and the slot arithmetic, on a fake clock."""

from __future__ import annotations

import pytest

from notifier.sender.ratelimit import (
    ClockOffset,
    RecipientBuckets,
    SlotBook,
    SlotRun,
    TokenBucket,
    late_tolerance,
    run_length,
    slot_spacing,
)


def test_a_new_bucket_allows_its_burst_at_once() -> None:
    bucket = TokenBucket(rate_per_second=1 / 6, burst=3)
    assert [bucket.try_acquire(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire(100.0) == pytest.approx(6.0)


def test_an_empty_bucket_says_how_long_to_wait_and_takes_nothing() -> None:
    bucket = TokenBucket(rate_per_second=2.0, burst=1)
    assert bucket.try_acquire(10.0) == 0.0
    assert bucket.try_acquire(10.1) == pytest.approx(0.4)
    # Asking again did not consume anything: the wait only shrinks with time.
    assert bucket.try_acquire(10.3) == pytest.approx(0.2)
    assert bucket.try_acquire(10.5) == 0.0


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate_per_second=1 / 6, burst=2)
    bucket.try_acquire(0.0)
    bucket.try_acquire(0.0)
    assert bucket.try_acquire(6.0) == 0.0  # exactly one interval later, despite float sums
    assert bucket.try_acquire(6.0) == pytest.approx(6.0)
    assert bucket.try_acquire(1000.0) == 0.0
    assert bucket.try_acquire(1000.0) == 0.0  # refilled to the burst, not beyond it
    assert bucket.try_acquire(1000.0) > 0.0


def test_time_going_backwards_does_not_refill() -> None:
    bucket = TokenBucket(rate_per_second=1.0, burst=1)
    assert bucket.try_acquire(50.0) == 0.0
    assert bucket.try_acquire(49.0) == pytest.approx(1.0)
    assert bucket.try_acquire(51.0) == 0.0


def test_is_full_once_the_burst_has_refilled() -> None:
    bucket = TokenBucket(rate_per_second=0.5, burst=2)
    bucket.try_acquire(0.0)
    assert not bucket.is_full(1.0)
    assert bucket.is_full(2.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_bucket_rejects_a_rate_or_burst_that_cannot_work(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_recipients_have_separate_buckets() -> None:
    buckets = RecipientBuckets(interval_seconds=6.0, burst=1)
    assert buckets.try_acquire("+441", 0.0) == 0.0
    assert buckets.try_acquire("+442", 0.0) == 0.0
    assert buckets.wait_time("+441", 1.0) == pytest.approx(5.0)
    assert buckets.wait_time("+443", 1.0) == 0.0


def test_full_idle_buckets_are_dropped_and_busy_ones_kept() -> None:
    buckets = RecipientBuckets(interval_seconds=6.0, burst=1)
    for recipient in ("+441", "+442", "+443"):
        buckets.try_acquire(recipient, 0.0)
    buckets.try_acquire("+444", 5.0)
    assert buckets.prune(6.0, busy={"+442"}) == 2  # +441 and +443; +444 is not full yet
    assert len(buckets) == 2
    # A forgotten recipient starts again with a full bucket, which is what it had.
    assert buckets.try_acquire("+441", 6.0) == 0.0


def test_a_zero_interval_disables_the_pair_limit() -> None:
    buckets = RecipientBuckets(interval_seconds=0.0, burst=1)
    assert all(buckets.try_acquire("+441", 0.0) == 0.0 for _ in range(100))
    assert len(buckets) == 0


def test_slot_spacing_leaves_the_safety_margin() -> None:
    assert slot_spacing(80, 1.0) == pytest.approx(0.0125)
    spacing = slot_spacing(20, 0.99)
    # MPS + 1 consecutive slots span more than one second: no window can hold MPS + 1.
    assert 20 * spacing == pytest.approx(1 / 0.99)
    assert 20 * spacing > 1.0


def test_late_tolerance_is_half_the_slack_of_the_safety_factor() -> None:
    assert late_tolerance(0.99) == pytest.approx((1 / 0.99 - 1) / 2)
    assert late_tolerance(1.0) == 0.001


def test_runs_are_what_is_wanted_capped_at_run_seconds() -> None:
    spacing = slot_spacing(80, 1.0)
    assert run_length(3, spacing, 0.2) == 3
    assert run_length(100, spacing, 0.2) == 16
    assert run_length(0, spacing, 0.2) == 1
    assert run_length(100, 1.0, 0.2) == 1


def test_a_run_lays_its_slots_out_evenly() -> None:
    assert list(SlotRun(10.0, 3, 0.5).times()) == [10.0, 10.5, 11.0]


def test_the_slot_book_hands_out_slots_in_order_and_drops_stale_ones() -> None:
    book = SlotBook(late_tolerance=0.005)
    book.add(SlotRun(10.0, 4, 0.1))
    assert book.take(9.0) == (10.0, 0)
    # At 10.204 the 10.1 and 10.2 slots are more than 5 ms old: thrown away.
    slot, stale = book.take(10.204)
    assert slot == pytest.approx(10.2)
    assert stale == 1
    assert book.take(10.5) == (None, 1)
    assert len(book) == 0
    assert book.is_late(10.0, 10.006)
    assert not book.is_late(10.0, 10.004)


def test_the_clock_offset_comes_from_the_fastest_recent_round_trip() -> None:
    offset = ClockOffset(keep=3)
    offset.observe(sent_at=10.0, received_at=10.010, remote_reading=5010.002)  # trip 10 ms
    offset.observe(sent_at=20.0, received_at=20.002, remote_reading=5020.001)  # trip 2 ms
    offset.observe(sent_at=30.0, received_at=30.050, remote_reading=5030.001)  # trip 50 ms
    assert offset.round_trip == pytest.approx(0.002)
    assert offset.to_local(5040.0) == pytest.approx(40.0)  # offset 5000 from the 2 ms trip


def test_old_clock_samples_age_out() -> None:
    offset = ClockOffset(keep=16, max_age=30.0)
    offset.observe(0.0, 0.001, 1000.0)
    offset.observe(40.0, 40.010, 1040.5)  # the fast sample is 40 s old: forgotten
    assert offset.round_trip == pytest.approx(0.010)
    assert offset.to_local(1041.0) == pytest.approx(40.505)
