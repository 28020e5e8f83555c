"""Process lifecycle: a stop flag set by SIGTERM/SIGINT, waited on instead of sleeping."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class StopFlag:
    """Set once when the process should stop; loops wait on it instead of sleeping."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits up to `timeout` seconds; True when the flag is set."""
        return self._event.wait(timeout)


def install_signal_handlers(stop: StopFlag | None = None) -> StopFlag:
    """SIGTERM and SIGINT set the returned flag; must be called from the main thread."""
    flag = stop or StopFlag()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        flag.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return flag
