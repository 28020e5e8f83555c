"""Which offset of a partition may be committed when records finish out of order. Pure.

Records of one partition are handed to concurrent workers and finish in any order;
the committed position may only move past a record once it and every record before
it are done, or a crash would skip the unfinished ones (at-least-once).
"""

from __future__ import annotations

from collections import deque


class OffsetTracker:
    """The offsets of one partition handed out (in order) and which of them are done."""

    __slots__ = ("_done", "_last_added", "_outstanding", "_position", "_stored")

    def __init__(self) -> None:
        self._outstanding: deque[int] = deque()
        self._done: set[int] = set()
        # The next offset to consume after everything done so far, contiguously.
        self._position: int | None = None
        self._stored: int | None = None
        self._last_added: int | None = None

    @property
    def pending(self) -> int:
        """Records handed out and not yet done (or done behind an unfinished one)."""
        return len(self._outstanding)

    def add(self, offset: int) -> bool:
        """Records an offset handed out; False (ignored) unless it is past every one before."""
        if self._last_added is not None and offset <= self._last_added:
            return False
        self._outstanding.append(offset)
        self._last_added = offset
        return True

    def done(self, offset: int) -> None:
        """Marks an offset finished; unknown (e.g. already passed) offsets are ignored."""
        if not self._outstanding or offset < self._outstanding[0]:
            return
        self._done.add(offset)
        while self._outstanding and self._outstanding[0] in self._done:
            finished = self._outstanding.popleft()
            self._done.discard(finished)
            self._position = finished + 1

    def to_store(self) -> int | None:
        """The position to store (next offset to read), if it moved since the last call."""
        if self._position is None or self._position == self._stored:
            return None
        self._stored = self._position
        return self._position

    @property
    def position(self) -> int | None:
        """The committable position: one past the last contiguously done offset."""
        return self._position
