"""How many cases each fuzz test runs and how they are drawn: a fixed sequence for CI.

FUZZ_EXAMPLES_SCALE multiplies every budget (10 for a long local run, 0.1 for a smoke
run); FUZZ_RANDOM=1 draws fresh random cases instead of the fixed sequence, and
Hypothesis prints the seed of any failure it finds.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings


def _scale() -> float:
    raw = os.environ.get("FUZZ_EXAMPLES_SCALE", "1")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"FUZZ_EXAMPLES_SCALE={raw!r} must be a positive number") from None
    if not value > 0:
        raise ValueError(f"FUZZ_EXAMPLES_SCALE={raw!r} must be a positive number")
    return value


SCALE = _scale()
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")


def examples(budget: int) -> int:
    """The number of cases a test with this budget runs at the current scale."""
    return max(1, round(budget * SCALE))


def fuzz_settings(budget: int) -> settings:
    # Cases are I/O-bound and some are large on purpose, so Hypothesis' timing and
    # size health checks would only get in the way; no example database, so a run
    # never depends on what an earlier one found.
    return settings(
        max_examples=examples(budget),
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


def fuzz_timeout(seconds_at_scale_one: float) -> pytest.MarkDecorator:
    """pytest-timeout for a fuzz test, grown with FUZZ_EXAMPLES_SCALE."""
    return pytest.mark.timeout(seconds_at_scale_one * max(1.0, SCALE))


class CaseCount:
    """Counts the cases a test really ran, so the advertised budget is checked."""

    def __init__(self) -> None:
        self.count = 0

    def tick(self) -> None:
        self.count += 1

    def assert_at_least(self, budget: int) -> None:
        assert self.count >= examples(budget), f"ran {self.count} of {examples(budget)} cases"
