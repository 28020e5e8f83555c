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


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU of one process (all its threads); 0 once it is gone. With
    `reaped`, plus what its children that exited and were waited for had spent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime + cstime
    return ticks / _TICKS


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


def thread_cpu(pids: Iterable[int]) -> dict[str, float]:
    """CPU seconds of every thread of `pids`, summed by thread name (/proc/<pid>/task/*/comm:
    librdkafka's `rdk:*`, grpc's, ...; Python threads carry their process's name)."""
    spent: dict[str, float] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                name = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            name = "rdk:broker" if name.startswith("rdk:broker") else name
            spent[name] = spent.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return spent


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
    `machine` is every CPU's busy time, whoever spent it. With `reaped`, a process's
    children that exited meanwhile still count (their CPU moves to the parent)."""

    def __init__(self, groups: Mapping[str, PidSource], reaped: bool = False) -> None:
        self._groups = dict(groups)
        self._reaped = reaped

    def snapshot(self) -> dict[str, float]:
        spent = {
            name: sum(cpu_seconds(p, self._reaped) for p in pids())
            for name, pids in self._groups.items()
        }
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


@dataclass(frozen=True, slots=True)
class TreePeak:
    """Peak memory of a process's children (gunicorn's workers), sampled together."""

    name: str
    pid: int
    children: int
    """Distinct children seen while watched."""
    sum_mib: float
    """Highest sum of the children's VmRSS in one sample."""
    max_mib: float
    """Highest VmRSS (sampled) or VmHWM (read at the end) of any one child."""


def rss_mib(pid: int) -> float | None:
    kib = status_kib(pid, "VmRSS")
    return None if kib is None else kib / 1024


class Monitor:
    """Samples VmRSS of the watched processes every `interval` s on a thread, plus the
    machine's 1-minute load average; `finish(name)` adds VmHWM while the process lives.
    `watch_children` follows the children of a process instead (their sum and each one)."""

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._watched: dict[str, int] = {}
        self._peaks: dict[str, int] = {}
        self._finished: dict[str, MemoryPeak] = {}
        self._trees: dict[str, int] = {}
        self._tree_sums: dict[str, int] = {}
        self._tree_children: dict[str, dict[int, int]] = {}
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

    def watch_children(self, name: str, pid: int) -> None:
        with self._lock:
            self._trees[name] = pid
            self._tree_sums[name] = 0
            self._tree_children[name] = {}
            self._sample_tree(name, pid)

    def finish_children(self, name: str) -> TreePeak:
        """Reads each live child's VmHWM (call before stopping them) and stops watching."""
        with self._lock:
            pid = self._trees.pop(name)
            self._sample_tree(name, pid)
            peaks = self._tree_children.pop(name)
            total = self._tree_sums.pop(name)
        for child in children(pid):
            peaks[child] = max(peaks.get(child, 0), status_kib(child, "VmHWM") or 0)
        return TreePeak(name, pid, len(peaks), total / 1024, max(peaks.values(), default=0) / 1024)

    def _sample_tree(self, name: str, pid: int) -> None:
        rss = {child: status_kib(child, "VmRSS") or 0 for child in children(pid)}
        self._tree_sums[name] = max(self._tree_sums[name], sum(rss.values()))
        peaks = self._tree_children[name]
        for child, kib in rss.items():
            peaks[child] = max(peaks.get(child, 0), kib)

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self._interval):
            with self._lock:
                for name, pid in self._watched.items():
                    self._peaks[name] = max(self._peaks[name], status_kib(pid, "VmRSS") or 0)
                for name, pid in self._trees.items():
                    self._sample_tree(name, pid)
            ticks += 1
            if ticks % int(5 / self._interval) == 0:
                self.load_samples.append(os.getloadavg()[0])
