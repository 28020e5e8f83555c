"""The emulator's settings (credentials, rate, latency, callbacks), dev defaults, runtime updates.

Pure: `parse_update` turns a `POST /_emulator/config` body into a checked `ConfigUpdate`;
applying it is the app's job.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from notifier.twilio_emulator.callback_plan import (
    CallbackConfigError,
    CallbackRule,
    CallbackSettings,
)
from notifier.twilio_emulator.faults import FaultRule, FaultRuleError

DEFAULT_ACCOUNT_SID: Final = "AC" + "dec0de" + "0" * 24 + "01"
"""Dev account SID: fixed so a dev stack and its tests agree without configuration."""
DEFAULT_AUTH_TOKEN: Final = "dev-auth-token-not-a-secret"
"""Dev auth token: also the key the dev stack signs webhooks with; never a real secret."""
ACCOUNT_SID: Final = re.compile(r"AC[0-9a-fA-F]{32}")
SETTING_KEYS: Final = frozenset({"account_sid", "auth_token", "mps", "latency_ms", "jitter_ms"})
FAULT_KEYS: Final = frozenset({"fail_next", "fail_to"})
CALLBACK_KEYS: Final = frozenset({"callbacks", "callback_rules"})


class ConfigError(ValueError):
    """A setting is out of range or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = field(default=DEFAULT_AUTH_TOKEN, repr=False)
    mps: int = 0
    """Accepted calls per second per sender; 0 = unlimited."""
    latency_ms: int = 0
    """Added before every Messages API answer."""
    jitter_ms: int = 0
    """Up to this much more latency, uniformly random."""
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    callback_rules: Mapping[str, CallbackRule] = field(default_factory=dict)
    """Per recipient (`whatsapp:+44...` or bare `+44...`): overrides of `callbacks`."""

    def __post_init__(self) -> None:
        if not ACCOUNT_SID.fullmatch(self.account_sid):
            raise ConfigError(f"account_sid must be AC + 32 hex digits, got {self.account_sid!r}")
        if not self.auth_token:
            raise ConfigError("auth_token must not be empty")
        for name in ("mps", "latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")

    def to_json(self) -> dict[str, object]:
        """The settings without the auth token."""
        return {
            "account_sid": self.account_sid,
            "mps": self.mps,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "callbacks": self.callbacks.to_json(),
            "callback_rules": {to: rule.to_json() for to, rule in self.callback_rules.items()},
        }


@dataclass(frozen=True, slots=True)
class ConfigUpdate:
    config: EmulatorConfig
    fail_next: tuple[FaultRule, ...] | None = None
    """Replaces the one-shot queue when given."""
    fail_to: Mapping[str, FaultRule | None] = field(default_factory=dict)
    """Per-`To` standing rules to set (None removes one)."""


def parse_update(current: EmulatorConfig, raw: object) -> ConfigUpdate:
    """Check a config request body against the current settings; raise ConfigError if bad."""
    if not isinstance(raw, Mapping):
        raise ConfigError("the config body must be a JSON object")
    unknown = set(raw) - SETTING_KEYS - FAULT_KEYS - CALLBACK_KEYS
    if unknown:
        raise ConfigError(f"unknown config keys: {sorted(unknown)}")
    settings: dict[str, object] = {key: raw[key] for key in SETTING_KEYS if key in raw}
    try:
        if "callbacks" in raw:
            settings["callbacks"] = current.callbacks.updated(raw["callbacks"])
        if "callback_rules" in raw:
            settings["callback_rules"] = _callback_rules(current, raw["callback_rules"])
        config = dataclasses.replace(current, **settings)  # type: ignore[arg-type]
        return ConfigUpdate(config, _fail_next(raw.get("fail_next")), _fail_to(raw.get("fail_to")))
    except (FaultRuleError, CallbackConfigError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc


def _callback_rules(current: EmulatorConfig, raw: object) -> dict[str, CallbackRule]:
    """The current rules with `raw` merged in; a null rule removes that recipient's rule."""
    if not isinstance(raw, Mapping):
        raise ConfigError("callback_rules must map a To address to a rule (or null)")
    rules = dict(current.callback_rules)
    for to, rule in raw.items():
        if rule is None:
            rules.pop(str(to), None)
        else:
            rules[str(to)] = CallbackRule.from_json(rule)
    return rules


def _fail_next(raw: object) -> tuple[FaultRule, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ConfigError("fail_next must be a list of fault rules")
    return tuple(FaultRule.from_json(item) for item in raw)


def _fail_to(raw: object) -> dict[str, FaultRule | None]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("fail_to must map a To address to a fault rule (or null)")
    return {
        str(to): None if rule is None else FaultRule.from_json(rule) for to, rule in raw.items()
    }
