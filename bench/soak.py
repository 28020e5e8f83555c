"""Soak: the whole pipeline (as in P5) at half of P5's delivered rate for `--minutes`, the RSS
of every process of ours sampled every 30 s. Passes when no process grows by 10 % or more
from the first sample after the warm-up to the last, none goes above 200 MiB, and every
accepted message reaches READ.

The warm-up lasts as long as the longest memory our processes keep by age: the sender's
recent sends (SENDER_RECENT_SENDS_SECONDS, 120 s). Until then that memory fills by design,
which is not the growth a soak looks for (growth that does not stop).

    .venv/bin/python bench/soak.py [--minutes 10] [--rate MSG_PER_S] [--interval 30]
                                   [--warmup 120] [--keep-logs]

Without `--rate`, a short P5 run (1,000 messages) measures the rate first.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

import p5_pipeline
from figures import Figure, percentile, table
from harness import BENCH, Bench, BenchError, open_bench, spawn
from pipeline import Pipeline, send_and_wait, start_pipeline, wait_for_status
from procstats import MACHINE, CpuMeter, children, rss_mib

from notifier.sender.settings import SenderSettings

NAME = "Soak"
LOAD_FRACTION = 0.5
GROWTH_LIMIT = 0.10
RSS_LIMIT_MIB = 200.0
PROBE_MESSAGES = 1000
# The sender's recent sends fill for this long (the default of SENDER_RECENT_SENDS_SECONDS).
RECENT_SENDS_SECONDS: float = next(
    f.default for f in dataclasses.fields(SenderSettings) if f.name == "recent_sends_seconds"
)  # type: ignore[assignment]
WARMUP_SECONDS = max(60.0, RECENT_SENDS_SECONDS)


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Seconds since the load started."""
    accepted: int
    done: int
    """Messages DELIVERED or READ."""
    rss_mib: Mapping[str, float]
    cpu: Mapping[str, float]
    """CPU seconds each process (group) has spent so far; `machine`: every CPU's busy time."""
    callbacks_pending: int
    """Status callbacks the emulator has scheduled and not yet had answered."""


def run(
    bench: Bench,
    minutes: float,
    rate: float | None = None,
    interval: float = 30.0,
    warmup: float = WARMUP_SECONDS,
) -> list[Figure]:
    if rate is None:
        rate = bench.results.get("p5_rate")
    if rate is None:
        print(f"  measuring P5's rate first ({PROBE_MESSAGES:,} messages)", flush=True)
        rate = p5_pipeline.measure(bench, PROBE_MESSAGES).rate
    load = LOAD_FRACTION * rate
    seconds = minutes * 60
    print(f"  offered load: {load:.1f} msg/s (half of {rate:.1f}) for {seconds:.0f} s", flush=True)
    database = bench.database("soak")
    env = bench.service_env(database, "soak")
    first = bench.index_block()
    with bench.services("soak") as services:
        pipeline = start_pipeline(services, env)
        warm = send_and_wait(bench, pipeline, database, range(first, first + 20), 90)
        samples, result = _soak(bench, pipeline, database, first + 20, load, seconds, interval)
        accepted = result["ok_total"]
        assert isinstance(accepted, int)
        ids_sql = "SELECT id FROM messages WHERE id <> ALL(%s)"
        ids = [row[0] for row in bench.query(database, ids_sql, warm)]
        wait_for_status(bench, pipeline, database, ids, ("READ",), timeout=120)
    _print_samples(samples)
    return _figures(samples, warmup, accepted, len(ids), result)


def _soak(
    bench: Bench,
    pipeline: Pipeline,
    database: str,
    first_index: int,
    load: float,
    seconds: float,
    interval: float,
) -> tuple[list[Sample], dict[str, object]]:
    """Open-loop accepts at `load` (bench/loadgen.py) while sampling every `interval` s."""
    out = bench.workdir / "soak-loadgen.out"
    argv = [sys.executable, str(BENCH / "loadgen.py"), "open", "--target", pipeline.target]
    argv += ["--rate", str(load), "--warmup", "0", "--duration", str(seconds)]
    argv += ["--channels", "1", "--first-index", str(first_index)]
    samples: list[Sample] = []
    meter = CpuMeter(pipeline.everything(bench))
    with out.open("w") as stdout:
        proc = spawn(argv, stdout=stdout, text=True)
        try:
            started = time.monotonic()
            for n in range(int(seconds // interval) + 1):
                _sleep_until(started + n * interval, proc)
                pipeline.require_alive()
                samples.append(
                    _sample(bench, pipeline, database, meter, time.monotonic() - started)
                )
            if proc.wait(timeout=120) != 0:
                raise BenchError(f"the load client failed (exit {proc.returncode})")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for line in out.read_text().splitlines():
        if line.startswith("result "):
            result: dict[str, object] = json.loads(line.removeprefix("result "))
            return samples, result
    raise BenchError("the load client printed no result")


def _sleep_until(moment: float, proc: subprocess.Popen[str]) -> None:
    while (left := moment - time.monotonic()) > 0:
        if proc.poll() not in (None, 0):
            raise BenchError(f"the load client failed (exit {proc.returncode})")
        time.sleep(min(left, 1.0))


def _sample(bench: Bench, pipeline: Pipeline, database: str, meter: CpuMeter, at: float) -> Sample:
    rss = {
        "gateway": rss_mib(pipeline.gateway.pid) or 0.0,
        "sender": rss_mib(pipeline.sender.pid) or 0.0,
        "webhook master": rss_mib(pipeline.webhook.pid) or 0.0,
    }
    # Workers by pid order; gunicorn does not recycle them (no max_requests).
    for n, worker in enumerate(sorted(children(pipeline.webhook.pid)), start=1):
        rss[f"webhook worker {n}"] = rss_mib(worker) or 0.0
    rss["recorder"] = rss_mib(pipeline.recorder.pid) or 0.0
    accepted = int(bench.query(database, "SELECT count(*) FROM messages")[0][0])
    done_sql = "SELECT count(*) FROM messages WHERE status IN ('DELIVERED', 'READ')"
    done = int(bench.query(database, done_sql)[0][0])
    return Sample(at, accepted, done, rss, meter.snapshot(), _callbacks_pending(pipeline))


def _callbacks_pending(pipeline: Pipeline) -> int:
    with urllib.request.urlopen(f"{pipeline.emulator_url}/_emulator/stats", timeout=5) as reply:
        stats = json.load(reply)
    return int(stats["callbacks"]["pending"])


def _print_samples(samples: list[Sample]) -> None:
    names = list(samples[0].rss_mib)
    header = ["t (s)", "accepted", "delivered", *names]
    rows = [
        [f"{s.at:.0f}", f"{s.accepted:,}", f"{s.done:,}"]
        + [f"{s.rss_mib.get(n, 0.0):.1f}" for n in names]
        for s in samples
    ]
    print("\n  RSS (MiB) of each process, every sample:")
    _print_rows([header, *rows])
    # Where the time went in each interval: a stage whose share climbs while `delivered`
    # falls behind `accepted` is the one that cannot keep up.
    groups = [name for name in samples[0].cpu if name != MACHINE]
    header = ["t (s)", "accepted/s", "delivered/s", "callbacks pending"]
    header += [*groups, "machine"]
    rows = []
    for before, after in itertools.pairwise(samples):
        seconds = after.at - before.at
        cpu = CpuMeter.spent(before.cpu, after.cpu)
        rows.append(
            [
                f"{after.at:.0f}",
                f"{(after.accepted - before.accepted) / seconds:.1f}",
                f"{(after.done - before.done) / seconds:.1f}",
                f"{after.callbacks_pending:,}",
            ]
            + [f"{cpu[name] / seconds:.0%}" for name in [*groups, MACHINE]]
        )
    print("\n  CPU of each process (share of one CPU) and the load, per interval:")
    _print_rows([header, *rows])


def _print_rows(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


def _figures(
    samples: list[Sample], warmup: float, accepted: int, stored: int, result: Mapping[str, object]
) -> list[Figure]:
    reference = next((s for s in samples if s.at >= warmup), samples[0])
    last = samples[-1]
    figures = []
    for name, start in reference.rss_mib.items():
        end = last.rss_mib.get(name, 0.0)
        peak = max(s.rss_mib.get(name, 0.0) for s in samples)
        growth = (end - start) / start if start else float("inf")
        figures.append(
            Figure(
                NAME,
                f"{name}: RSS at {last.at:.0f} s (peak {peak:.1f} MiB)",
                end,
                "MiB",
                baseline=start,
                baseline_name=f"at {reference.at:.0f} s",
                ratio=end / start if start else None,
                target=f"growth < {GROWTH_LIMIT:.0%}, peak < {RSS_LIMIT_MIB:.0f} MiB",
                passed=growth < GROWTH_LIMIT and peak < RSS_LIMIT_MIB,
            )
        )
    latencies = result.get("latencies_ms", [])
    assert isinstance(latencies, list)
    errors = result.get("errors", {})
    assert isinstance(errors, dict)
    figures += [
        Figure(
            NAME,
            "accepted messages stored / all READ afterwards",
            stored,
            "msg",
            baseline=accepted,
            baseline_name="ids returned",
            target="= ids returned, all READ",
            passed=stored == accepted and not errors,
        ),
        Figure(NAME, "accept latency p99 over the soak", percentile(latencies, 0.99), "ms"),
    ]
    return figures


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--rate", type=float, help="P5's delivered msg/s (default: measure it)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_SECONDS,
        help="growth is measured from the first sample after (default: the sender's "
        "recent-sends window)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    args = parser.parse_args()
    with open_bench(quick=False, keep=args.keep_logs) as bench:
        figures = run(bench, args.minutes, args.rate, args.interval, args.warmup)
    print()
    print(table(figures))
    sys.exit(0 if all(f.passed is not False for f in figures) else 1)


if __name__ == "__main__":
    main()
