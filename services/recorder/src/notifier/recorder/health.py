"""The consumer loop's liveness, for /healthz: it fails once the loop stops polling.

A stuck loop (a hung statement, a bug) holds its partitions without applying
anything; failing the probe lets Kubernetes restart it. A database outage does
not fail it: the loop keeps polling while it retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LoopHealth:
    """The /healthz check: healthy while the loop polled within `max_silence` seconds."""

    def __init__(
        self, max_silence: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_silence = max_silence
        self._clock = clock
        self._last_poll = clock()

    def beat(self) -> None:
        self._last_poll = self._clock()

    def check(self) -> tuple[bool, str]:
        silent = self._clock() - self._last_poll
        if silent > self._max_silence:
            return False, f"consumer loop has not polled for {silent:.0f} s"
        return True, "ok"
