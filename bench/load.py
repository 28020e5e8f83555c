"""Runs a load client (bench/loadgen.py for gRPC, bench/httpload.py for HTTP) in its own
process against one server, and measures the CPU each process of the system spent inside
the measured window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from figures import percentile
from harness import BENCH, BenchError, spawn
from procstats import MACHINE, CpuMeter, PidSource, wait_for_quiet

# Calls in flight and HTTP/2 connections of the closed-loop client. 64 over 4 channels
# gave the no-op server its highest rate on the 2-core machine (see docs/benchmarks.md).
CONCURRENCY = 64
CHANNELS = 4


@dataclass(frozen=True, slots=True)
class LoadRun:
    """One load client run: replies in the window, errors, latency, CPU per process."""

    mode: str
    duration: float
    ok: int
    ok_total: int
    errors: Mapping[str, int]
    latencies_ms: list[float]
    cpu_seconds: Mapping[str, float]
    """CPU spent in the measured window by each process group, the client included."""

    @property
    def rate(self) -> float:
        return self.ok / self.duration

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def p(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    def cpu_per_call_us(self) -> dict[str, float]:
        """µs of CPU per reply: each process group, the sum of ours, and everyone else's."""
        calls = max(self.ok, 1)
        ours = {n: s / calls * 1e6 for n, s in self.cpu_seconds.items() if n != MACHINE}
        machine = self.cpu_seconds.get(MACHINE, 0.0) / calls * 1e6
        return {**ours, "total": sum(ours.values()), "others": machine - sum(ours.values())}

    @property
    def machine_busy(self) -> float:
        """Busy fraction of all CPUs during the window (1.0: every CPU busy all the time)."""
        return self.cpu_seconds.get(MACHINE, 0.0) / self.duration / (os.cpu_count() or 1)

    def describe_cpu(self) -> str:
        parts = [f"{name} {us:.0f}" for name, us in self.cpu_per_call_us().items()]
        return f"CPU µs per call: {', '.join(parts)}; CPUs {self.machine_busy:.0%} busy"


def run_load(
    target: str,
    *,
    mode: str,
    warmup: float,
    duration: float,
    first_index: int,
    processes: Mapping[str, PidSource],
    rate: float = 0.0,
) -> LoadRun:
    """Runs the gRPC client to completion; `processes` are the server side's, by name."""
    argv = [sys.executable, str(BENCH / "loadgen.py"), mode, "--target", target]
    argv += ["--concurrency", str(CONCURRENCY), "--channels", str(CHANNELS)]
    argv += ["--warmup", str(warmup), "--duration", str(duration)]
    argv += ["--first-index", str(first_index), "--rate", str(rate)]
    return run_client(argv, processes)


def run_client(argv: list[str], processes: Mapping[str, PidSource]) -> LoadRun:
    """Runs a load client process (`loadgen.py`, `httpload.py`) to completion and reads
    the CPU of `processes` between its `measure` and `done` lines.

    Waits first for the machine to be quiet (other jobs on a shared machine); the CPU
    that others spend during the window is reported either way.
    """
    busy = wait_for_quiet(max_wait=20.0)
    if busy > 0.15:
        print(f"  (the machine stayed {busy:.0%} busy before this run; measuring anyway)")
    proc = spawn(argv, stdout=subprocess.PIPE, text=True)
    meter = CpuMeter(processes, reaped=True)
    before: dict[str, float] = {}
    spent: dict[str, float] = {}
    result: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "measure":
                before = meter.snapshot()
            elif word == "done":
                spent = CpuMeter.spent(before, meter.snapshot())
            elif word == "result":
                result = json.loads(rest)
        if proc.wait(timeout=120) != 0 or not result:
            raise BenchError(f"the load client failed (exit {proc.returncode})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return LoadRun(
        mode=result["mode"],
        duration=result["duration"],
        ok=result["ok"],
        ok_total=result["ok_total"],
        errors=result["errors"],
        latencies_ms=result["latencies_ms"],
        cpu_seconds={**spent, "client": result["cpu_seconds"]},
    )
