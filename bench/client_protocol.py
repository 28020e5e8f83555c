"""What a load client process (loadgen.py, httpload.py) reports to bench/load.py.

It prints `measure` when the measured window opens, `done` when it closes, then
`result <json>`: a LoadResult with the client's pid.
"""

from __future__ import annotations

import json
import os
import resource
from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass
class LoadResult:
    mode: str
    duration: float
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    ok_total: int = 0
    """Every OK reply, warm-up and tail included: what the database must hold."""
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    """This client's CPU time (user + system) during the measured window."""
    max_outstanding: int = 0
    """Open loop (loadgen): the most calls unanswered at once."""
    reconnects: int = 0
    """HTTP (httpload): connections the server closed and the client opened again."""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def announce(word: str) -> None:
    """`measure` or `done`."""
    print(word, flush=True)


def print_result(result: LoadResult) -> None:
    print("result " + json.dumps({**asdict(result), "pid": os.getpid()}), flush=True)
