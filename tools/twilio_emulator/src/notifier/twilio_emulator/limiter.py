"""Strict sliding-window limit on accepted calls per sender, and the peak rate it observed.

Pure: time comes in as `now` (seconds, monotonic); the caller serialises calls (one lock).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict for one call: admitted or not, and what the window held afterwards."""

    admitted: bool
    in_window: int
    """Admitted calls of this sender in the window ending now, this one included if admitted."""
    retry_after: float
    """Seconds until the oldest call leaves the window (0 when admitted)."""


class SlidingWindowLimiter:
    """At most `mps` admitted calls per key in any half-open window of `window` seconds.

    `mps == 0` admits everything but still tracks the window, so peaks are measured either way.
    Only admitted calls count: a refused call does not push the window forward.
    """

    def __init__(self, mps: int, window: float = 1.0) -> None:
        if mps < 0:
            raise ValueError(f"mps must be >= 0, got {mps}")
        if window <= 0:
            raise ValueError(f"window must be > 0, got {window}")
        self._mps = mps
        self._window = window
        self._times: dict[str, deque[float]] = {}

    @property
    def mps(self) -> int:
        return self._mps

    def set_rate(self, mps: int) -> None:
        """Change the limit; calls already in the window keep counting against it."""
        if mps < 0:
            raise ValueError(f"mps must be >= 0, got {mps}")
        self._mps = mps

    def admit(self, key: str, now: float) -> Admission:
        """Admit one call of `key` arriving at `now`, unless the window is full."""
        times = self._times.setdefault(key, deque())
        horizon = now - self._window
        while times and times[0] <= horizon:
            times.popleft()
        if self._mps and len(times) >= self._mps:
            wait = times[len(times) - self._mps] - horizon
            return Admission(admitted=False, in_window=len(times), retry_after=max(wait, 0.0))
        times.append(now)
        return Admission(admitted=True, in_window=len(times), retry_after=0.0)

    def reset(self) -> None:
        self._times.clear()


def retry_after_header(seconds: float) -> str:
    """HTTP `Retry-After` takes whole seconds; never advertise 0 for a refused call."""
    return str(max(1, math.ceil(seconds)))
