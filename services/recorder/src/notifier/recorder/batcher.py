"""When a batch of consumed events is due: full, or its oldest item too old.

Pure: holds items and decides with the `now` it is given; it never reads the
clock, so the consumer loop and the tests drive time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """A batch is applied once it holds `max_size` items or its oldest is `max_age` s old."""

    max_size: int
    max_age: float

    def __post_init__(self) -> None:
        if self.max_size < 1:
            raise ValueError("max_size must be at least 1")
        if self.max_age < 0:
            raise ValueError("max_age must not be negative")


class Batcher(Generic[T]):
    """Collects items in arrival order until `is_due(now)`; `take()` empties it."""

    def __init__(self, policy: BatchPolicy) -> None:
        self._policy = policy
        self._items: list[T] = []
        self._started_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> tuple[T, ...]:
        return tuple(self._items)

    def add(self, item: T, now: float) -> None:
        if self._started_at is None:
            self._started_at = now
        self._items.append(item)

    def is_due(self, now: float) -> bool:
        if not self._items:
            return False
        return len(self._items) >= self._policy.max_size or self.due_in(now) == 0.0

    def due_in(self, now: float) -> float | None:
        """Seconds until the age limit makes the batch due; None when it is empty."""
        if self._started_at is None:
            return None
        return max(0.0, self._started_at + self._policy.max_age - now)

    def take(self) -> list[T]:
        """Returns every item in arrival order and starts an empty batch."""
        items, self._items, self._started_at = self._items, [], None
        return items

    def put_back(self, items: Sequence[T], now: float) -> None:
        """Puts items taken earlier (a batch whose apply failed) back in front of those
        added since; the batch counts as started at `now`, or earlier if it was."""
        self._items[:0] = items
        if items and (self._started_at is None or now < self._started_at):
            self._started_at = now

    def discard(self, unwanted: Callable[[T], bool]) -> int:
        """Drops the items `unwanted` accepts (e.g. of revoked partitions); returns how many.

        The age of what remains is kept: the oldest survivor is no younger than
        the batch.
        """
        kept = [item for item in self._items if not unwanted(item)]
        dropped = len(self._items) - len(kept)
        self._items = kept
        if not kept:
            self._started_at = None
        return dropped
