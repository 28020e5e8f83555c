"""The `/_emulator/` control API: read messages, callbacks, stats and config; configure; reset.

Socket-free like the app it controls: one function from (method, name, body) to a `Reply`.
"""

from __future__ import annotations

import json
from typing import Final, Protocol

from notifier.twilio_emulator.config import ConfigError, EmulatorConfig
from notifier.twilio_emulator.faults import FaultPlan
from notifier.twilio_emulator.ledger import Ledger
from notifier.twilio_emulator.reply import Reply

CONTROL_PREFIX: Final = "/_emulator/"


class Controlled(Protocol):
    """What the control API reads and changes (the EmulatorApp)."""

    ledger: Ledger
    faults: FaultPlan

    @property
    def config(self) -> EmulatorConfig: ...

    def configure(self, raw: object) -> EmulatorConfig: ...

    def reset(self) -> None: ...


def control_reply(app: Controlled, method: str, path: str, body: bytes) -> Reply:
    """The answer to `method path` under CONTROL_PREFIX."""
    name = path.removeprefix(CONTROL_PREFIX).rstrip("/")
    if method == "GET" and name == "messages":
        return Reply(200, [m.to_json() for m in app.ledger.messages()])
    if method == "GET" and name == "callbacks":
        return Reply(200, [c.to_json() for c in app.ledger.callbacks.records()])
    if method == "GET" and name == "stats":
        return Reply(200, app.ledger.stats().to_json())
    if method == "GET" and name == "config":
        return Reply(200, {**app.config.to_json(), **app.faults.to_json()})
    if method == "GET" and name == "healthz":
        return Reply(200, {"ok": True})
    if method == "POST" and name == "reset":
        app.reset()
        return Reply(200, {"reset": True})
    if method == "POST" and name == "config":
        try:
            config = app.configure(json.loads(body or b"{}"))
        except (ValueError, ConfigError) as exc:
            return Reply(400, {"error": str(exc)})
        return Reply(200, {**config.to_json(), **app.faults.to_json()})
    return Reply(404, {"error": f"no control endpoint {method} {path}"})
