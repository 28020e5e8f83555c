"""What a MessageTemplate's `.status` says after a reconcile (pure: the time comes in as `now`).

Holds the phases and the standard `Ready` condition; the handlers decide which outcome applies,
kopf writes the patch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Phase(StrEnum):
    PENDING = "Pending"  # not stored yet (e.g. PostgreSQL is down; the operator retries)
    READY = "Ready"  # stored and enabled: the gateway accepts it within seconds
    DISABLED = "Disabled"  # stored with enabled=false: the gateway refuses it
    INVALID = "Invalid"  # the spec cannot be stored; `message` says what to fix


@dataclass(frozen=True, slots=True)
class Outcome:
    """One reconcile's result, as shown on the resource."""

    phase: Phase
    reason: str  # CamelCase, as Kubernetes conditions want
    message: str

    @property
    def ready(self) -> str:
        if self.phase in (Phase.READY, Phase.DISABLED):
            return "True"
        return "False"


def stored(template_id: str, enabled: bool) -> Outcome:
    if enabled:
        return Outcome(Phase.READY, "Synced", f"template {template_id!r} is stored and enabled")
    return Outcome(
        Phase.DISABLED,
        "Disabled",
        f"template {template_id!r} is stored and disabled (enabled: false)",
    )


def invalid(reason: str, message: str) -> Outcome:
    return Outcome(Phase.INVALID, reason, message)


def waiting(message: str) -> Outcome:
    return Outcome(Phase.PENDING, "DatabaseUnavailable", message)


def status_patch(
    outcome: Outcome,
    generation: int | None,
    previous: Mapping[str, object] | None,
    now: datetime,
) -> dict[str, object]:
    """The fields to merge into `.status`; lastTransitionTime moves only when Ready flips."""
    condition: dict[str, object] = {
        "type": "Ready",
        "status": outcome.ready,
        "reason": outcome.reason,
        "message": outcome.message,
        "lastTransitionTime": _transition_time(outcome.ready, previous, now),
    }
    patch: dict[str, object] = {
        "phase": outcome.phase.value,
        "message": outcome.message,
        "conditions": [condition],
    }
    if generation is not None:
        patch["observedGeneration"] = generation
        condition["observedGeneration"] = generation
    return patch


def _transition_time(status: str, previous: Mapping[str, object] | None, now: datetime) -> str:
    conditions = (previous or {}).get("conditions")
    if isinstance(conditions, Sequence):
        for old in conditions:
            if (
                isinstance(old, Mapping)
                and old.get("type") == "Ready"
                and old.get("status") == status
                and isinstance(old.get("lastTransitionTime"), str)
            ):
                return str(old["lastTransitionTime"])
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
