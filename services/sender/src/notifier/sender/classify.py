"""Twilio error -> RETRY or FAIL (one table), and the backoff between retries. Pure.

Retry what may succeed later without changing the request (throttling, Twilio's own
faults, the network); fail at once what the same request will always get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    # A short label for metrics and logs: "throttled", "server_error", "timeout", ...
    reason: str


# Errors about the recipient, the sender, the template or the account: the same call
# gets the same answer, so retrying only delays the FAILED status and spends quota.
PERMANENT_CODES: dict[int, str] = {
    20003: "authentication failed",
    20404: "resource not found",
    21211: "invalid To number",
    21212: "invalid From number",
    21408: "region not enabled",
    21606: "From number cannot send this message",
    21610: "recipient opted out (STOP)",
    21612: "cannot route to this number",
    21614: "To is not a mobile number",
    21656: "invalid ContentVariables",
    63005: "channel refused the message",
    63016: "outside the 24-hour window; a template is required",
    63024: "invalid recipient (not a WhatsApp user)",
}

# 4xx codes that say "later", not "never": the account's queue or rate is full.
RETRYABLE_CODES: dict[int, str] = {
    20429: "throttled",
    21611: "sender queue full",
    63018: "rate limit exceeded",
}


def classify(http_status: int | None, code: int | None, *, timeout: bool = False) -> Decision:
    """Decides for one failed API call.

    `http_status` is None when no HTTP answer came (connection refused or reset).
    An unknown 4xx code FAILS: Twilio understood the request and refused it, and
    resending it unchanged would multiply load and hide the fault (a bad template,
    a wrong credential) behind retries. The code is kept, so it can be moved into
    RETRYABLE_CODES once it is known to be transient.
    """
    if timeout:
        return Decision(Verdict.RETRY, "timeout")
    if http_status is None:
        return Decision(Verdict.RETRY, "connection")
    if code is not None and code in PERMANENT_CODES:
        return Decision(Verdict.FAIL, str(code))
    if code is not None and code in RETRYABLE_CODES:
        return Decision(Verdict.RETRY, "throttled" if code == 20429 else str(code))
    if http_status == 429:
        return Decision(Verdict.RETRY, "throttled")
    if http_status >= 500:
        return Decision(Verdict.RETRY, "server_error")
    return Decision(Verdict.FAIL, str(code) if code is not None else f"http_{http_status}")


def backoff_delay(retry: int, base: float, cap: float, random: Callable[[], float]) -> float:
    """Seconds to wait before retry number `retry` (1 = the first retry).

    Exponential with full jitter: uniform in [0, min(cap, base x 2^(retry-1))], so
    replicas that failed together do not retry together. `random()` is in [0, 1).
    """
    if retry < 1:
        raise ValueError(f"retry counts from 1, got {retry}")
    ceiling = min(cap, base * 2.0 ** min(retry - 1, 62))
    return ceiling * random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `max_attempts` calls per message, `backoff_delay` apart."""

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def delay(self, retry: int, random: Callable[[], float]) -> float:
        return backoff_delay(retry, self.base, self.cap, random)
