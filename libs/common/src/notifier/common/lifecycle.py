"""Process lifecycle: a stop flag set by SIGTERM/SIGINT, waited on instead of sleeping, and a
watchdog for shutdowns that overrun their grace period."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


def freeze_heap() -> None:
    """Takes every object alive now out of the garbage collector's reach, once a service
    has started: modules, their metadata (phonenumbers' alone is tens of thousands of
    objects), clients and servers live as long as the process, yet every full collection
    walked them, ~5 ms with the GIL held, a pause for every thread. What is created later
    is collected as usual."""
    gc.collect()
    gc.freeze()


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


class GraceWatchdog:
    """Runs `on_overrun` when a shutdown is still going `grace` seconds after the stop.

    For work blocked where the stop flag cannot reach it (a statement waiting on a hung
    PostgreSQL): the action breaks it loose (e.g. `Database.abort`) so the process exits
    within its grace period. Call `finished()` once the shutdown is done.
    """

    def __init__(self, stop: StopFlag, grace: float, on_overrun: Callable[[], object]) -> None:
        self._stop = stop
        self._grace = grace
        self._on_overrun = on_overrun
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="grace-watchdog", daemon=True)

    def start(self) -> GraceWatchdog:
        self._thread.start()
        return self

    def finished(self) -> None:
        self._finished.set()
        self._stop.set()  # lets the thread end if no stop ever came

    def _watch(self) -> None:
        self._stop.wait()
        if self._finished.wait(self._grace):
            return
        log.warning("shutdown overran its grace period; breaking off what still blocks it",
                    extra={"grace_seconds": self._grace})  # fmt: skip
        self._on_overrun()


def run_in_worker_thread(target: Callable[[], object], name: str) -> None:
    """Runs `target` on a thread of its own while the main thread waits for it.

    Python runs signal handlers on the main thread only, between bytecodes: a main
    thread blocked in C (a libpq call waiting on a hung PostgreSQL) would not see SIGTERM
    until it returned. Waiting in join() instead, it sees it at once. An exception in
    `target` is raised here.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    worker = threading.Thread(target=run, name=name)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
