"""The batcher: a batch is due when full or when its oldest item is too old."""

from __future__ import annotations

import pytest

from notifier.recorder.batcher import Batcher, BatchPolicy


def test_an_empty_batch_is_never_due() -> None:
    batch: Batcher[int] = Batcher(BatchPolicy(max_size=3, max_age=0.2))
    assert not batch.is_due(now=1_000.0)
    assert batch.due_in(now=1_000.0) is None


def test_a_full_batch_is_due_at_once() -> None:
    batch: Batcher[int] = Batcher(BatchPolicy(max_size=3, max_age=10.0))
    for i in range(2):
        batch.add(i, now=0.0)
    assert not batch.is_due(now=0.0)
    batch.add(2, now=0.0)
    assert batch.is_due(now=0.0)


def test_a_batch_is_due_when_its_oldest_item_reaches_the_max_age() -> None:
    batch: Batcher[int] = Batcher(BatchPolicy(max_size=100, max_age=0.2))
    batch.add(1, now=10.0)
    batch.add(2, now=10.15)
    assert not batch.is_due(now=10.19)
    assert batch.due_in(now=10.1) == pytest.approx(0.1)
    assert batch.is_due(now=10.2)
    assert batch.due_in(now=11.0) == 0.0


def test_take_returns_items_in_arrival_order_and_restarts_the_clock() -> None:
    batch: Batcher[str] = Batcher(BatchPolicy(max_size=100, max_age=0.2))
    batch.add("a", now=0.0)
    batch.add("b", now=0.1)
    assert batch.take() == ["a", "b"]
    assert len(batch) == 0
    batch.add("c", now=5.0)
    assert not batch.is_due(now=5.1)
    assert batch.is_due(now=5.2)


def test_discard_drops_matching_items_and_keeps_the_age_of_the_rest() -> None:
    batch: Batcher[int] = Batcher(BatchPolicy(max_size=100, max_age=1.0))
    for i in range(5):
        batch.add(i, now=float(i) / 10)
    assert batch.discard(lambda i: i % 2 == 0) == 3
    assert batch.items == (1, 3)
    assert batch.is_due(now=1.0)


def test_discarding_everything_empties_the_batch() -> None:
    batch: Batcher[int] = Batcher(BatchPolicy(max_size=100, max_age=1.0))
    batch.add(1, now=0.0)
    batch.discard(lambda _: True)
    assert not batch
    assert batch.due_in(now=5.0) is None


@pytest.mark.parametrize(("size", "age"), [(0, 1.0), (1, -0.1)])
def test_a_policy_rejects_nonsense(size: int, age: float) -> None:
    with pytest.raises(ValueError):
        BatchPolicy(max_size=size, max_age=age)


def test_items_put_back_go_in_front_of_those_added_since() -> None:
    batch: Batcher[str] = Batcher(BatchPolicy(max_size=100, max_age=0.2))
    batch.add("a", now=0.0)
    taken = batch.take()
    batch.add("b", now=0.3)
    batch.put_back(taken, now=0.35)
    assert batch.items == ("a", "b")
    # The batch is as old as its oldest part: "b" waited since 0.3.
    assert batch.due_in(now=0.35) == pytest.approx(0.15)


def test_items_put_back_into_an_empty_batch_start_its_clock() -> None:
    batch: Batcher[str] = Batcher(BatchPolicy(max_size=100, max_age=0.2))
    batch.put_back(["a"], now=5.0)
    assert batch.items == ("a",)
    assert batch.due_in(now=5.1) == pytest.approx(0.1)
