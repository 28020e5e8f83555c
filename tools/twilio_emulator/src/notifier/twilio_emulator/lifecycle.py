"""A message's status at "Twilio" over time: its callback plan read as a timeline. Pure.

What `GET /Messages/{Sid}.json` answers follows this, whether or not a callback reached the
webhook (disabled, failed, lost): Twilio's own record does not depend on our receiver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from notifier.twilio_emulator.callback_plan import PlannedCallback
from notifier.twilio_emulator.catalog import DeliveryError

# How far along each status is; final ones outrank everything, so nothing moves past them.
RANK: Final = {
    "accepted": 0,
    "queued": 0,
    "sending": 0,
    "sent": 1,
    "delivered": 2,
    "read": 3,
    "undelivered": 4,
    "failed": 4,
}


@dataclass(frozen=True, slots=True)
class Step:
    """The message reaches `status` at `at` (seconds on the app's monotonic clock)."""

    at: float
    status: str
    error: DeliveryError | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Where a message starts (`queued`/`accepted`) and the steps it takes after."""

    initial: str
    steps: tuple[Step, ...] = ()

    def status_at(self, now: float) -> Step:
        """The furthest step whose time has come (a shuffled plan that posts `read` first
        still means the message was read), or the initial status at no time."""
        current = Step(float("-inf"), self.initial)
        for step in self.steps:
            if step.at <= now and RANK.get(step.status, 0) > RANK.get(current.status, 0):
                current = step
        return current


def timeline(initial: str, plan: Sequence[PlannedCallback], start: float) -> Timeline:
    """The timeline of a message whose callbacks are planned `start` + each delay."""
    steps = tuple(Step(start + planned.delay, planned.status, planned.error) for planned in plan)
    return Timeline(initial, steps)
