"""Injected failures: a queue of rules for the next create calls and standing rules per `To`.

A rule either fails the call (HTTP status + Twilio code) or only delays it, so senders' retry
paths (5xx, 429, client timeouts) can be driven on purpose. Thread-safe; no I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from notifier.twilio_emulator.catalog import TwilioError

DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Authenticate",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
RULE_KEYS = frozenset({"status", "code", "message", "delay_ms"})


class FaultRuleError(ValueError):
    """A fault rule in a config request is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Fail with `status`/`code` (when status is set), after waiting `delay_ms` extra."""

    status: int | None = None
    code: int | None = None
    message: str | None = None
    delay_ms: int = 0

    @property
    def error(self) -> TwilioError | None:
        """The answer this rule forces, or None for a delay-only rule (the call then succeeds)."""
        if self.status is None:
            return None
        code = self.code if self.code is not None else default_code(self.status)
        text = self.message or DEFAULT_MESSAGES.get(self.status, "Injected failure")
        return TwilioError(self.status, code, text)

    @classmethod
    def from_json(cls, raw: object) -> FaultRule:
        if not isinstance(raw, Mapping):
            raise FaultRuleError(f"a fault rule must be a JSON object, got {raw!r}")
        unknown = set(raw) - RULE_KEYS
        if unknown:
            raise FaultRuleError(f"unknown fault rule keys: {sorted(unknown)}")
        status = _optional_int(raw, "status")
        if status is not None and not 400 <= status <= 599:
            raise FaultRuleError(f"fault rule status must be 400..599, got {status}")
        delay_ms = _optional_int(raw, "delay_ms") or 0
        if delay_ms < 0:
            raise FaultRuleError(f"fault rule delay_ms must be >= 0, got {delay_ms}")
        message = raw.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultRuleError("fault rule message must be a string")
        return cls(status, _optional_int(raw, "code"), message, delay_ms)

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "delay_ms": self.delay_ms,
        }


def default_code(status: int) -> int:
    """Twilio's generic codes follow the HTTP status (20429, 20500), except 401 -> 20003."""
    return 20003 if status == 401 else 20000 + status


def _optional_int(raw: Mapping[str, object], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultRuleError(f"fault rule {key} must be an integer, got {value!r}")
    return value


class FaultPlan:
    """Rules waiting for the next calls (used once each, in order) and standing per-`To` rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: deque[FaultRule] = deque()
        self._by_to: dict[str, FaultRule] = {}

    def set_next(self, rules: Iterable[FaultRule]) -> None:
        """Replace the queue of one-shot rules."""
        with self._lock:
            self._next = deque(rules)

    def set_for_to(self, to: str, rule: FaultRule | None) -> None:
        """Apply `rule` to every call to `to` (bare number or `whatsapp:` address); None clears."""
        with self._lock:
            if rule is None:
                self._by_to.pop(to, None)
            else:
                self._by_to[to] = rule

    def take(self, to: str, to_number: str) -> FaultRule | None:
        """The rule for this call: a queued one first (consumed), else a standing one for `To`."""
        with self._lock:
            if self._next:
                return self._next.popleft()
            return self._by_to.get(to) or self._by_to.get(to_number)

    def clear(self) -> None:
        with self._lock:
            self._next.clear()
            self._by_to.clear()

    def to_json(self) -> dict[str, object]:
        with self._lock:
            return {
                "fail_next": [rule.to_json() for rule in self._next],
                "fail_to": {to: rule.to_json() for to, rule in self._by_to.items()},
            }
