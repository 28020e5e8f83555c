"""P5: the whole pipeline, accept (gRPC) -> DELIVERED (emulator callbacks -> webhook ->
recorder): delivered messages per second, and the CPU our own processes spend per message.

N messages are accepted as fast as the gateway takes them (32 calls in flight) while the
rest of the pipeline works on them. The rate runs from the first accept to the recorder's
last DELIVERED; the CPU (utime + stime from /proc of gateway, sender, webhook master and
workers, recorder, and any children they reaped) from just before the first accept until
every message is READ, so every callback's cost is in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from figures import Figure
from harness import Bench, Launcher, accept_all
from pipeline import (
    DONE_STATUSES,
    OURS,
    SENDER_MPS,
    Pipeline,
    send_and_wait,
    start_pipeline,
    wait_for_status,
)
from procstats import MACHINE, CpuMeter

NAME = "P5"
TARGET_CPU_MS = 1.5
WARMUP_MESSAGES = 20


@dataclass(frozen=True, slots=True)
class PipelineRun:
    messages: int
    accept_seconds: float
    """First accept call to the last id returned."""
    delivered_seconds: float
    """First accept call to the last DELIVERED the recorder committed."""
    cpu_seconds: Mapping[str, float]
    """Per process group, first accept to all READ; `machine` is every CPU's busy time."""
    stage_ends: Mapping[str, float]
    """Seconds from the first accept to the last message reaching each status."""

    @property
    def rate(self) -> float:
        return self.messages / self.delivered_seconds

    def cpu_ms(self, name: str) -> float:
        return self.cpu_seconds[name] / self.messages * 1000

    @property
    def ours_ms(self) -> float:
        return sum(self.cpu_ms(name) for name in OURS)


def run(bench: Bench) -> list[Figure]:
    count = 1000 if bench.quick else 3000
    result = measure(bench, count)
    bench.results["p5_rate"] = result.rate
    figures = [
        Figure(
            NAME,
            f"accept -> DELIVERED, {count:,} messages (sender MPS {SENDER_MPS})",
            result.rate,
            "msg/s",
            baseline=count / result.accept_seconds,
            baseline_name="accepts/s meanwhile",
        ),
        Figure(
            NAME,
            "CPU of our processes per message (gateway+sender+webhook+recorder)",
            result.ours_ms,
            "ms",
            target=f"<= {TARGET_CPU_MS} ms",
            passed=result.ours_ms <= TARGET_CPU_MS,
        ),
    ]
    figures += [
        Figure(NAME, f"CPU per message: {name}", result.cpu_ms(name), "ms")
        for name in (*OURS, "emulator", "postgres", "tansu")
    ]
    for figure in figures:
        print(figure.line())
    return figures


# Called with the warm pipeline just before the measured window; what it returns (if
# anything) is called just after.
WindowHook = Callable[[Pipeline], Callable[[], None] | None]


def measure(
    bench: Bench,
    count: int,
    launcher: Launcher | None = None,
    on_window: WindowHook | None = None,
) -> PipelineRun:
    """Runs N messages through a fresh pipeline; `launcher` wraps each service's argv."""
    database = bench.database("p5")
    env = bench.service_env(database, "p5")
    first = bench.index_block()
    with bench.services("p5", launcher) as services:
        pipeline = start_pipeline(services, env)
        send_and_wait(bench, pipeline, database, range(first, first + WARMUP_MESSAGES), 90)
        print(f"  pipeline up; {WARMUP_MESSAGES} warm-up messages READ", flush=True)
        indices = range(first + WARMUP_MESSAGES, first + WARMUP_MESSAGES + count)
        after = on_window(pipeline) if on_window is not None else None
        result = _measure(bench, pipeline, database, indices)
        if after is not None:
            after()
    _print(result)
    return result


def _measure(
    bench: Bench, pipeline: Pipeline, database: str, indices: Sequence[int]
) -> PipelineRun:
    meter = CpuMeter(pipeline.everything(bench), reaped=True)
    before = meter.snapshot()
    started = time.time()
    ids = accept_all(pipeline.target, indices)
    accepted = time.time()
    timeout = 60 + len(ids) / 20
    wait_for_status(bench, pipeline, database, ids, DONE_STATUSES, timeout)
    wait_for_status(bench, pipeline, database, ids, ("READ",), timeout)
    spent = CpuMeter.spent(before, meter.snapshot())
    ends = _stage_ends(bench, database, ids, started)
    return PipelineRun(
        messages=len(ids),
        accept_seconds=accepted - started,
        delivered_seconds=ends["DELIVERED"],
        cpu_seconds=spent,
        stage_ends=ends,
    )


def _stage_ends(
    bench: Bench, database: str, ids: Sequence[int], started: float
) -> dict[str, float]:
    """When the last message reached each status (the recorder's transaction time)."""
    rows = bench.query(
        database,
        "SELECT status, extract(epoch FROM max(recorded_at)) FROM message_status_history "
        "WHERE message_id = ANY(%s) GROUP BY status",
        list(ids),
    )
    return {status: float(at) - started for status, at in rows}


def _print(result: PipelineRun) -> None:
    ends = ", ".join(
        f"{status} {seconds:.1f} s"
        for status, seconds in sorted(result.stage_ends.items(), key=lambda kv: kv[1])
    )
    machine = result.cpu_seconds[MACHINE] / result.messages * 1000
    listed = sum(v for k, v in result.cpu_seconds.items() if k != MACHINE)
    others = (result.cpu_seconds[MACHINE] - listed) / result.messages * 1000
    print(
        f"  {result.messages:,} messages: accepted in {result.accept_seconds:.1f} s; last one "
        f"reaching each status after: {ends}\n"
        f"  {result.rate:,.1f} delivered/s; CPU ms per message: "
        + ", ".join(
            f"{name} {result.cpu_ms(name):.3f}" for name in result.cpu_seconds if name != MACHINE
        )
        + f"; whole machine {machine:.3f} (others {others:.3f})",
        flush=True,
    )
