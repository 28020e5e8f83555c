"""What processes cost, read from /proc: CPU seconds (per process or process tree), the
resident set (sampled VmRSS peaks, and VmHWM), and the machine's load while we run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
PidSource = Callable[[], Iterable[int]]
MACHINE = "machine"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children(pid: int) -> list[int]:
    """Direct children of `pid` (PostgreSQL's backends are children of the postmaster)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def with_children(pid: int) -> PidSource:
    return lambda: [pid, *children(pid)]


def status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent on anything but idling (all CPUs summed)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS


def wait_for_quiet(threshold: float = 0.15, max_wait: float = 60.0) -> float:
    """Waits (up to `max_wait` s) until the machine is at most `threshold` busy (a fraction
    of all CPUs) over half a second; returns the last busy fraction seen. Run it while
    the system under test idles, so another job's burst does not land in a window."""
    cpus = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(0.5)
        busy = (machine_busy_seconds() - before) / 0.5 / cpus
        if busy <= threshold or time.monotonic() >= deadline:
            return busy
        time.sleep(2.0)


class CpuMeter:
    """CPU seconds of named groups of processes between two snapshots; the group
    `machine` is every CPU's busy time, whoever spent it."""

    def __init__(self, groups: Mapping[str, PidSource]) -> None:
        self._groups = dict(groups)

    def snapshot(self) -> dict[str, float]:
        spent = {name: sum(cpu_seconds(p) for p in pids()) for name, pids in self._groups.items()}
        return {**spent, MACHINE: machine_busy_seconds()}

    @staticmethod
    def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
        return {name: after[name] - before.get(name, 0.0) for name in after}


@dataclass(frozen=True, slots=True)
class MemoryPeak:
    name: str
    pid: int
    sampled_rss_mib: float
    """Highest VmRSS seen by the sampler."""
    hwm_mib: float
    """VmHWM read just before the process was stopped: the kernel's own peak."""

    @property
    def peak_mib(self) -> float:
        return max(self.sampled_rss_mib, self.hwm_mib)


class Monitor:
    """Samples VmRSS of the watched processes every `interval` s on a thread, plus the
    machine's 1-minute load average; `finish(name)` adds VmHWM while the process lives."""

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._watched: dict[str, int] = {}
        self._peaks: dict[str, int] = {}
        self._finished: dict[str, MemoryPeak] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)
        self.load_samples: list[float] = []

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._watched[name] = pid
            self._peaks[name] = status_kib(pid, "VmRSS") or 0

    def finish(self, name: str) -> MemoryPeak:
        """Reads VmHWM (call before stopping the process) and stops watching it."""
        with self._lock:
            pid = self._watched.pop(name)
            sampled = max(self._peaks.pop(name), status_kib(pid, "VmRSS") or 0)
        hwm = status_kib(pid, "VmHWM") or 0
        peak = MemoryPeak(name, pid, sampled / 1024, hwm / 1024)
        self._finished[name] = peak
        return peak

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self._interval):
            with self._lock:
                for name, pid in self._watched.items():
                    self._peaks[name] = max(self._peaks[name], status_kib(pid, "VmRSS") or 0)
            ticks += 1
            if ticks % int(5 / self._interval) == 0:
                self.load_samples.append(os.getloadavg()[0])
