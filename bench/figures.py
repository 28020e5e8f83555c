"""Figures as the benchmarks report them (value, baseline from the same run, target), the
final table, and the description of the machine they were measured on.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    passed: bool | None = None
    """None: informational, no target."""
    ratio: float | None = None

    def line(self) -> str:
        """One printed line: the figure next to its baseline and target."""
        text = f"  {self.name}: {_number(self.value)} {self.unit}"
        if self.baseline is not None:
            text += f"   baseline ({self.baseline_name}): {_number(self.baseline)} {self.unit}"
        if self.ratio is not None:
            text += f"   ratio {self.ratio:.4f}"
        if self.target:
            text += f"   target {self.target}: {verdict(self.passed)}"
        return text


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[passed]


def _number(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def table(figures: Sequence[Figure]) -> str:
    """The summary: one row per figure."""
    header = ("benchmark", "figure", "value", "baseline", "ratio", "target", "result")
    rows = [header]
    for f in figures:
        rows.append(
            (
                f.bench,
                f.name,
                f"{_number(f.value)} {f.unit}",
                f"{_number(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "-",
                f"{f.ratio:.4f}" if f.ratio is not None else "-",
                f.target or "-",
                verdict(f.passed),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.99 for p99); NaN when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def machine() -> str:
    """nproc, CPU model, memory, kernel and Python: enough to compare runs."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_gib:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )
