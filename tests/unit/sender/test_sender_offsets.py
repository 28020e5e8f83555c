"""Offsets finishing out of order: only the contiguous prefix becomes committable."""

from __future__ import annotations

from notifier.sender.offsets import OffsetTracker


def test_nothing_is_stored_before_the_first_offset_is_done() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.add(offset)
    tracker.done(12)
    tracker.done(11)
    assert tracker.to_store() is None
    assert tracker.pending == 3


def test_out_of_order_completion_stores_the_highest_contiguous_position() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.add(offset)
    tracker.done(11)
    tracker.done(13)
    tracker.done(10)
    assert tracker.to_store() == 12  # 10 and 11 done; 12 is not
    assert tracker.to_store() is None  # unchanged since last time
    tracker.done(12)
    assert tracker.to_store() == 14
    assert tracker.pending == 0


def test_gaps_in_offsets_do_not_block_the_position() -> None:
    tracker = OffsetTracker()
    for offset in (5, 9, 20):  # compaction or transaction markers leave gaps
        tracker.add(offset)
    tracker.done(5)
    tracker.done(9)
    assert tracker.position == 10
    tracker.done(20)
    assert tracker.to_store() == 21


def test_re_fetched_and_unknown_offsets_are_ignored() -> None:
    tracker = OffsetTracker()
    assert tracker.add(3)
    assert tracker.add(4)
    assert not tracker.add(4)
    assert not tracker.add(2)
    tracker.done(3)
    tracker.done(3)
    tracker.done(1)
    assert tracker.position == 4
    assert tracker.pending == 1
