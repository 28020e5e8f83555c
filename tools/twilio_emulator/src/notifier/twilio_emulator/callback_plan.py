"""Which status callbacks an accepted message gets, and when: settings, per-recipient rules, plan.

Pure: `plan_callbacks` turns settings (+ an optional rule for the recipient) into timed
callbacks; posting them is the dispatcher's job. JSON parsing for `/_emulator/config` lives here.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from notifier.twilio_emulator.catalog import OUTSIDE_WINDOW, UNKNOWN_ERROR, DeliveryError
from notifier.twilio_emulator.validation import split_channel


class CallbackConfigError(ValueError):
    """A callback setting or rule is malformed; the message names it."""


class CallbackMode(StrEnum):
    NORMAL = "normal"  # sent, delivered, read
    NO_READ = "no_read"  # sent, delivered (read receipts off)
    UNDELIVERED = "undelivered"  # sent, undelivered 30008
    FAILED = "failed"  # failed 63016
    NONE = "none"  # no callback at all


class Shuffle(StrEnum):
    OFF = "off"
    RANDOM = "random"  # any order but the planned one
    REVERSE = "reverse"


STATUSES: Final[Mapping[CallbackMode, tuple[str, ...]]] = {
    CallbackMode.NORMAL: ("sent", "delivered", "read"),
    CallbackMode.NO_READ: ("sent", "delivered"),
    CallbackMode.UNDELIVERED: ("sent", "undelivered"),
    CallbackMode.FAILED: ("failed",),
    CallbackMode.NONE: (),
}
ERRORS: Final[Mapping[str, DeliveryError]] = {
    "undelivered": UNKNOWN_ERROR,
    "failed": OUTSIDE_WINDOW,
}
DEFAULT_DELAYS: Final[Mapping[str, float]] = MappingProxyType(
    {"sent": 0.2, "delivered": 1.0, "read": 3.0, "undelivered": 1.0, "failed": 0.2}
)
"""Seconds after the API answered, roughly what a WhatsApp message sees on a good day."""
RULE_KEYS: Final = frozenset({"mode", "shuffle", "duplicate"})
NUMBER_KEYS: Final = frozenset({"speed", "retry_backoff", "timeout"})
SETTING_KEYS: Final = RULE_KEYS | NUMBER_KEYS | {"enabled", "delays", "attempts"}


@dataclass(frozen=True, slots=True)
class PlannedCallback:
    status: str
    delay: float
    """Seconds after acceptance."""
    error: DeliveryError | None = None


@dataclass(frozen=True, slots=True)
class CallbackRule:
    """Per-recipient overrides; a field left None follows the global settings."""

    mode: CallbackMode | None = None
    shuffle: Shuffle | None = None
    duplicate: bool | None = None

    @classmethod
    def from_json(cls, raw: object) -> CallbackRule:
        if not isinstance(raw, Mapping):
            raise CallbackConfigError(f"a callback rule must be a JSON object, got {raw!r}")
        _check_keys(raw, RULE_KEYS, "callback rule")
        return cls(
            _enum(CallbackMode, raw["mode"], "mode") if "mode" in raw else None,
            _shuffle(raw["shuffle"]) if "shuffle" in raw else None,
            _flag(raw["duplicate"], "duplicate") if "duplicate" in raw else None,
        )

    def to_json(self) -> dict[str, object]:
        """Only the fields it overrides."""
        fields = {"mode": self.mode, "shuffle": self.shuffle, "duplicate": self.duplicate}
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    enabled: bool = True
    mode: CallbackMode = CallbackMode.NORMAL
    shuffle: Shuffle = Shuffle.OFF
    duplicate: bool = False
    """Post every callback twice."""
    delays: Mapping[str, float] = field(default_factory=lambda: DEFAULT_DELAYS)
    speed: float = 1.0
    """Delays are divided by this: 10 runs the lifecycle ten times faster."""
    attempts: int = 3
    """Posts per callback when the receiver is down or answers 5xx/429."""
    retry_backoff: float = 0.5
    """Seconds before the first retry; doubles for each further one."""
    timeout: float = 5.0

    def __post_init__(self) -> None:
        # Accept the JSON spellings too ("undelivered", "reverse"), so callers may pass strings.
        object.__setattr__(self, "mode", _enum(CallbackMode, self.mode, "mode"))
        object.__setattr__(self, "shuffle", _shuffle(self.shuffle))
        unknown = set(self.delays) - set(DEFAULT_DELAYS)
        if unknown:
            raise CallbackConfigError(f"delays has unknown statuses: {sorted(unknown)}")
        for status, seconds in self.delays.items():
            _number(seconds, f"delays.{status}", minimum=0.0)
        for name in NUMBER_KEYS:
            _number(getattr(self, name), name, minimum=0.0)
        if self.speed <= 0 or self.timeout <= 0:
            raise CallbackConfigError("speed and timeout must be > 0")
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise CallbackConfigError(f"attempts must be an integer, got {self.attempts!r}")
        if not 1 <= self.attempts <= 10:
            raise CallbackConfigError(f"attempts must be 1..10, got {self.attempts}")

    def delay_of(self, status: str) -> float:
        return self.delays.get(status, DEFAULT_DELAYS[status]) / self.speed

    def updated(self, raw: object) -> CallbackSettings:
        """These settings with a `{"callbacks": {...}}` body applied; `delays` merge by status."""
        if not isinstance(raw, Mapping):
            raise CallbackConfigError("callbacks must be a JSON object")
        _check_keys(raw, SETTING_KEYS, "callbacks")
        changes: dict[str, object] = {k: raw[k] for k in NUMBER_KEYS | {"attempts"} if k in raw}
        if "enabled" in raw:
            changes["enabled"] = _flag(raw["enabled"], "enabled")
        rule = CallbackRule.from_json({k: raw[k] for k in RULE_KEYS if k in raw})
        changes.update({k: v for k, v in dataclasses.asdict(rule).items() if v is not None})
        if "delays" in raw:
            if not isinstance(raw["delays"], Mapping):
                raise CallbackConfigError("delays must map a status to seconds")
            changes["delays"] = MappingProxyType({**self.delays, **raw["delays"]})
        try:
            return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        except TypeError as exc:
            raise CallbackConfigError(str(exc)) from exc

    def to_json(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "mode": self.mode.value,
            "shuffle": self.shuffle.value,
            "duplicate": self.duplicate,
            "delays": dict(self.delays),
            "speed": self.speed,
            "attempts": self.attempts,
            "retry_backoff": self.retry_backoff,
            "timeout": self.timeout,
        }


def rule_for(to: str, rules: Mapping[str, CallbackRule]) -> CallbackRule | None:
    """The rule for `To` as given (`whatsapp:+44...`), else for its bare number."""
    return rules.get(to) or rules.get(split_channel(to)[1])


def plan_callbacks(
    settings: CallbackSettings, rule: CallbackRule | None, rng: random.Random
) -> list[PlannedCallback]:
    """The callbacks to post, each with its delay; shuffled ones swap their time slots."""
    rule = rule or CallbackRule()
    statuses = list(STATUSES[rule.mode or settings.mode])
    delays = [settings.delay_of(status) for status in statuses]
    shuffle = rule.shuffle or settings.shuffle
    if shuffle != Shuffle.OFF and len(statuses) > 1:
        delays.sort()
        statuses = _reordered(statuses, shuffle, rng)
    copies = 2 if (settings.duplicate if rule.duplicate is None else rule.duplicate) else 1
    return [
        PlannedCallback(status, delay, ERRORS.get(status))
        for status, delay in zip(statuses, delays, strict=True)
        for _ in range(copies)
    ]


def _reordered(statuses: list[str], shuffle: Shuffle, rng: random.Random) -> list[str]:
    if shuffle == Shuffle.REVERSE:
        return statuses[::-1]
    while True:  # never the planned order itself: a test asking for disorder gets it
        candidate = rng.sample(statuses, len(statuses))
        if candidate != statuses:
            return candidate


def _check_keys(raw: Mapping[str, object], allowed: frozenset[str], what: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise CallbackConfigError(f"unknown {what} keys: {sorted(unknown)}")


def _enum(kind: type[CallbackMode], raw: object, name: str) -> CallbackMode:
    if isinstance(raw, str) and raw in kind.__members__.values():
        return kind(raw)
    raise CallbackConfigError(f"{name} must be one of {[m.value for m in kind]}, got {raw!r}")


def _shuffle(raw: object) -> Shuffle:
    """`true` means random, `false` off; or a Shuffle name."""
    if isinstance(raw, bool):
        return Shuffle.RANDOM if raw else Shuffle.OFF
    if isinstance(raw, str) and raw in Shuffle.__members__.values():
        return Shuffle(raw)
    choices = [s.value for s in Shuffle]
    raise CallbackConfigError(f"shuffle must be true, false or one of {choices}, got {raw!r}")


def _flag(raw: object, name: str) -> bool:
    if not isinstance(raw, bool):
        raise CallbackConfigError(f"{name} must be true or false, got {raw!r}")
    return raw


def _number(raw: object, name: str, minimum: float) -> None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < minimum:
        raise CallbackConfigError(f"{name} must be a number >= {minimum:g}, got {raw!r}")
