"""Twilio errors: which are retried, which fail at once; and the backoff between retries."""

from __future__ import annotations

import random

import pytest

from notifier.sender.classify import Verdict, backoff_delay, classify


@pytest.mark.parametrize(
    ("status", "code", "timeout", "verdict", "reason"),
    [
        # Throttling, Twilio's faults and the network: the same call may work later.
        (429, 20429, False, Verdict.RETRY, "throttled"),
        (429, None, False, Verdict.RETRY, "throttled"),
        (400, 20429, False, Verdict.RETRY, "throttled"),
        (500, 20500, False, Verdict.RETRY, "server_error"),
        (502, None, False, Verdict.RETRY, "server_error"),
        (503, 20503, False, Verdict.RETRY, "server_error"),
        (None, None, False, Verdict.RETRY, "connection"),
        (None, None, True, Verdict.RETRY, "timeout"),
        (400, 21611, False, Verdict.RETRY, "21611"),
        (429, 63018, False, Verdict.RETRY, "63018"),
        # The request itself is refused: fail at once, keeping the code.
        (400, 21211, False, Verdict.FAIL, "21211"),
        (400, 21408, False, Verdict.FAIL, "21408"),
        (400, 21610, False, Verdict.FAIL, "21610"),
        (400, 21612, False, Verdict.FAIL, "21612"),
        (400, 21614, False, Verdict.FAIL, "21614"),
        (400, 63016, False, Verdict.FAIL, "63016"),
        (400, 63024, False, Verdict.FAIL, "63024"),
        (401, 20003, False, Verdict.FAIL, "20003"),
        (404, 20404, False, Verdict.FAIL, "20404"),
        # A permanent code wins even over a 5xx status.
        (500, 21211, False, Verdict.FAIL, "21211"),
        # Unknown 4xx: fail (the same request gets the same answer), code kept.
        (400, 12345, False, Verdict.FAIL, "12345"),
        (403, None, False, Verdict.FAIL, "http_403"),
    ],
)
def test_classification_table(
    status: int | None, code: int | None, timeout: bool, verdict: Verdict, reason: str
) -> None:
    decision = classify(status, code, timeout=timeout)
    assert (decision.verdict, decision.reason) == (verdict, reason)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    ceilings = [backoff_delay(n, 0.5, 30.0, lambda: 0.999999) for n in range(1, 10)]
    assert ceilings == pytest.approx([0.5, 1, 2, 4, 8, 16, 30, 30, 30], rel=1e-5)


def test_backoff_is_full_jitter_between_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(3, 0.5, 30.0, rng.random) for _ in range(2000)]
    assert all(0.0 <= d < 2.0 for d in delays)
    assert min(delays) < 0.1 and max(delays) > 1.9
    assert 0.9 < sum(delays) / len(delays) < 1.1  # uniform: the mean is half the ceiling


def test_backoff_survives_huge_retry_numbers() -> None:
    assert backoff_delay(10_000, 0.5, 30.0, lambda: 0.5) == 15.0


def test_backoff_counts_retries_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, 0.5, 30.0, lambda: 0.5)
