"""Where the slowest stage of P5 spends its CPU: runs the pipeline once as P5 does to find
the stage with the most CPU per message (and its CPU per thread name: Python threads vs
librdkafka's), then again with that stage under cProfile (bench/profiled.py: every thread,
every gunicorn worker, per-thread CPU clocks), and prints its CPU by package and its
hottest functions.

    .venv/bin/python bench/profile_stage.py [--stage auto|gateway|sender|webhook|recorder]
                                            [--messages 2000] [--top 25] [--out DIR]

The merged profile is kept (`DIR/<stage>.prof`) for `python -m pstats` or snakeviz.
"""

from __future__ import annotations

import argparse
import pstats
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import p5_pipeline
from harness import BENCH, open_bench
from pipeline import OURS, Pipeline
from procstats import thread_cpu

# pstats' function key: (file, line, name); built-ins have file "~".
Func = tuple[str, int, str]
_SITE = re.compile(r"site-packages/([^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/([^/]+)")
_NOTIFIER = re.compile(r"/notifier/(\w+)/(\w+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="auto", choices=("auto", *OURS))
    parser.add_argument("--messages", type=int, default=2000, help="messages per run")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--out", type=Path, help="where the profiles go (default: temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="notifier-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)
    stage = args.stage
    with open_bench(quick=False) as bench:
        threads = ThreadWatch()
        print("== unprofiled run: CPU per stage, and per thread", flush=True)
        plain = p5_pipeline.measure(bench, args.messages, on_window=threads.around)
        if stage == "auto":
            stage = max(OURS, key=plain.cpu_ms)
        print(f"  profiled stage: {stage} ({plain.cpu_ms(stage):.3f} ms CPU per message)")
        print(threads.report(stage, plain.messages))
        prefix = out / stage

        def launcher(name: str, argv: list[str]) -> list[str]:
            if name != stage:
                return argv
            return [sys.executable, str(BENCH / "profiled.py"), str(prefix), *argv]

        def mark_window(_pipeline: Pipeline) -> None:
            # The profiled processes take what they have so far (start-up, warm-up) as
            # their baseline once this file appears; they look every 50 ms.
            Path(f"{prefix}.start").touch()
            time.sleep(0.5)

        print(f"\n== {stage} under cProfile", flush=True)
        profiled = p5_pipeline.measure(bench, args.messages, launcher, mark_window)
    files = sorted(out.glob(f"{stage}.[0-9]*.prof"))
    if not files:
        raise SystemExit(f"no profile was written under {out}")
    stats = load(files)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    merged = out / f"{stage}.prof"
    stats.dump_stats(str(merged))
    print(
        f"\n{stage}: {profiled.cpu_ms(stage):.3f} ms CPU per message under the profiler "
        f"(from /proc; Python threads' share in the profile: "
        f"{total / profiled.messages * 1000:.3f} ms); {len(files)} process(es) profiled; "
        f"merged profile: {merged}"
    )
    print(report(stats.stats, args.top))  # type: ignore[attr-defined]


class ThreadWatch:
    """CPU of each stage's threads by name (Python threads vs librdkafka's, grpc's, ...)
    over the measured window of an unprofiled run."""

    def __init__(self) -> None:
        self._spent: dict[str, dict[str, float]] = {}

    def around(self, pipeline: Pipeline) -> Callable[[], None]:
        sources = pipeline.ours()
        before = {name: thread_cpu(pids()) for name, pids in sources.items()}

        def after() -> None:
            for name, pids in sources.items():
                now = thread_cpu(pids())
                self._spent[name] = {
                    thread: seconds - before[name].get(thread, 0.0)
                    for thread, seconds in now.items()
                }

        return after

    def report(self, stage: str, messages: int) -> str:
        spent = sorted(self._spent.get(stage, {}).items(), key=lambda kv: kv[1], reverse=True)
        lines = [f"  {stage}'s threads, CPU µs per message (unprofiled):"]
        lines += [
            f"    {seconds / messages * 1e6:8.0f}  {name}" for name, seconds in spent if seconds > 0
        ]
        return "\n".join(lines)


def load(files: list[Path]) -> pstats.Stats:
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    return stats


def report(raw: Mapping[Func, tuple], top: int) -> str:  # type: ignore[type-arg]
    """CPU by package (C calls charged to their caller's package), then the functions with
    the most self CPU, then our own functions by inclusive CPU."""
    total = sum(entry[2] for entry in raw.values()) or 1.0
    by_package: Counter[str] = Counter()
    for func, (_cc, _nc, tt, _ct, callers) in raw.items():
        if func[0] != "~" or not callers:
            by_package[package(func)] += tt
            continue
        caller_time = sum(c[3] for c in callers.values()) or 1.0
        for caller, (_c1, _c2, _t, ct) in callers.items():
            by_package[package(caller)] += tt * ct / caller_time
    lines = [f"profiled CPU: {total:.2f} s in Python threads", "", "CPU by package:"]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in by_package.most_common(top)]
    lines += ["", f"top {top} functions by self CPU (tottime; ncalls, cumtime):"]
    ranked = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for func, (_cc, nc, tt, ct, _callers) in ranked:
        lines.append(f"  {tt / total:6.1%}  {label(func)}  ({nc:,} calls, cum {ct / total:.1%})")
    ours = [(f, e) for f, e in raw.items() if "/notifier/" in f[0]]
    ours.sort(key=lambda item: item[1][3], reverse=True)
    lines += ["", "our functions by inclusive CPU (cumtime; ncalls):"]
    for func, (_cc, nc, _tt, ct, _callers) in ours[:top]:
        lines.append(f"  {ct / total:6.1%}  {label(func)}  ({nc:,} calls)")
    return "\n".join(lines)


def package(func: Func) -> str:
    """notifier.<service>.<module>, a site-packages distribution, or stdlib:<module>."""
    path = func[0]
    if path == "~":
        return "built-in (no Python caller)"
    if match := _NOTIFIER.search(path):
        return f"notifier.{match[1]}.{match[2]}"
    if match := _SITE.search(path):
        return match[1].removesuffix(".py")
    if match := _STDLIB.search(path):
        return f"stdlib:{match[1].removesuffix('.py')}"
    return path


def label(func: Func) -> str:
    path, line, name = func
    if path == "~":
        return name
    return f"{name} ({package(func)}:{line})"


if __name__ == "__main__":
    main()
