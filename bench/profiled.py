"""Runs a Python console script under cProfile in every thread and every forked child
(gunicorn's workers), each thread timed by its own CPU clock, so time spent waiting (for a
lock, the GIL, a socket) is not counted; writes `<prefix>.<pid>.prof` when each process exits.

    python bench/profiled.py PREFIX SCRIPT [ARGS...]

Once a file `<prefix>.start` appears, what was profiled until then (imports, start-up,
warm-up) is taken as a baseline and left out of the file written at exit.

The profile's per-call timer reads (~0.4 µs each here) inflate call-heavy code: compare
shares within one profile, and take absolute CPU from /proc, not from it.
"""

from __future__ import annotations

import atexit
import cProfile
import os
import pstats
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any

Raw = dict[Any, Any]

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_original_run = threading.Thread.run


def _start_profile() -> cProfile.Profile:
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()
    return profile


def _profiled_run(self: threading.Thread) -> None:
    profile = _start_profile()
    try:
        _original_run(self)
    finally:
        profile.disable()


class _MarkWatcher(threading.Thread):
    """Waits for the start marker, then snapshots the profiles (its own run is not profiled:
    it overrides `run`)."""

    def __init__(self, session: _Session) -> None:
        super().__init__(name="profile-mark", daemon=True)
        self._session = session

    def run(self) -> None:
        marker = Path(f"{self._session.prefix}.start")
        while not marker.exists():
            time.sleep(0.05)
        self._session.baseline = _collect()


class _Session:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.baseline: Raw = {}
        self.main = _start_profile()
        _MarkWatcher(self).start()

    def after_fork(self) -> None:
        # The child's only thread is the one that forked: its inherited profile holds
        # the parent's calls. Start this process's own, and its own watcher.
        self.main.disable()
        with _lock:
            _profiles.clear()
        self.baseline = {}
        self.main = _start_profile()
        _MarkWatcher(self).start()

    def dump(self) -> None:
        self.main.disable()
        raw = _subtract(_collect(), self.baseline)
        if raw:
            stats = pstats.Stats()
            stats.stats = raw  # type: ignore[attr-defined]
            stats.dump_stats(f"{self.prefix}.{os.getpid()}.prof")


def _collect() -> Raw:
    """Every thread's profile so far, merged (pstats' raw form)."""
    with _lock:
        profiles = list(_profiles)
    merged: Raw = {}
    for profile in profiles:
        # Read without disabling (pstats.Stats(profile) would: only the profiled thread
        # itself may); calls still in progress are left out.
        profile.snapshot_stats()
        for func, stat in profile.stats.items():
            merged[func] = _add(merged[func], stat) if func in merged else stat
    return merged


def _add(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    """Two pstats entries of one function summed (as pstats.Stats.add does)."""
    callers = dict(a[4])
    for caller, values in b[4].items():
        before = callers.get(caller, (0, 0, 0.0, 0.0))
        callers[caller] = tuple(x + y for x, y in zip(before, values, strict=True))
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], callers)


def _subtract(raw: Raw, baseline: Raw) -> Raw:
    """`raw` minus `baseline`, function by function and caller by caller."""
    result: Raw = {}
    for func, (cc, nc, tt, ct, callers) in raw.items():
        b_cc, b_nc, b_tt, b_ct, b_callers = baseline.get(func, (0, 0, 0.0, 0.0, {}))
        if nc - b_nc <= 0:
            continue
        left = {}
        for caller, values in callers.items():
            before = b_callers.get(caller, (0, 0, 0.0, 0.0))
            diff = tuple(a - b for a, b in zip(values, before, strict=True))
            if diff[1] > 0:
                left[caller] = diff
        result[func] = (cc - b_cc, nc - b_nc, tt - b_tt, ct - b_ct, left)
    return result


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    prefix, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    # As if the script were run itself: its own directory first, not bench/.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    session = _Session(prefix)
    os.register_at_fork(after_in_child=session.after_fork)
    atexit.register(session.dump)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
