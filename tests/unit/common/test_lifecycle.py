"""GraceWatchdog and run_in_worker_thread keep a shutdown within its grace; freeze_heap."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from notifier.common.lifecycle import GraceWatchdog, StopFlag, freeze_heap, run_in_worker_thread
from tests.fixtures.waiting import wait_until


def test_the_watchdog_acts_when_the_shutdown_overruns_its_grace() -> None:
    stop, fired = StopFlag(), threading.Event()
    watchdog = GraceWatchdog(stop, grace=0.05, on_overrun=fired.set).start()
    assert not fired.wait(0.1), "no stop yet: nothing to overrun"
    stop.set()
    wait_until(fired.is_set, timeout=5, message="the overrun action")
    watchdog.finished()


def test_the_watchdog_stays_quiet_when_the_shutdown_finishes_in_time() -> None:
    stop, fired = StopFlag(), threading.Event()
    watchdog = GraceWatchdog(stop, grace=0.2, on_overrun=fired.set).start()
    stop.set()
    watchdog.finished()
    assert not fired.wait(0.4)


def test_run_in_worker_thread_runs_off_the_main_thread_and_raises_its_error() -> None:
    names: list[str] = []
    run_in_worker_thread(lambda: names.append(threading.current_thread().name), "worker-x")
    assert names == ["worker-x"]

    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_in_worker_thread(fail, "worker-y")


def test_freeze_heap_takes_what_lives_now_out_of_collections_and_still_collects_new_garbage() -> (
    None
):
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    before = Node()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        collected = weakref.ref(Node())  # garbage at once, kept only by its own cycle
        gc.collect()
        assert collected() is None
        assert gc.get_freeze_count() == frozen  # a collection leaves the frozen alone
        assert before.me is before
    finally:
        gc.unfreeze()
