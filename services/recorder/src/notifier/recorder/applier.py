"""Applies one batch of consumed records through an EventSink, isolating poison.

A batch PostgreSQL rejects as a whole (PermanentError) is applied event by event,
and only the events rejected on their own go to the dead-letter topic, so one bad
event never blocks a partition. TransientError is left to the loop to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from notifier.common.domain.messages import Event
from notifier.common.errors import PermanentError
from notifier.recorder.deadletter import DeadLetters
from notifier.recorder.store import ApplyResult

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def apply(self, events: Sequence[Event]) -> ApplyResult: ...


@dataclass(frozen=True, slots=True)
class Pending:
    """One consumed record; `event` is None when the record went to the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    event: Event | None = None

    @property
    def source(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset


class BatchApplier:
    def __init__(self, sink: EventSink, dead_letters: DeadLetters) -> None:
        self._sink = sink
        self._dead_letters = dead_letters

    def apply(self, items: Sequence[Pending]) -> list[ApplyResult]:
        """Applies the events of `items`; raises TransientError when PostgreSQL is away."""
        events = [p.event for p in items if p.event is not None]
        try:
            return [self._sink.apply(events)]
        except PermanentError as exc:
            if len(events) == 1:
                self._dead_letter(items, exc)
                return []
            log.warning("batch rejected; applying its events one by one", extra={"error": str(exc)})
        results = []
        for pending in items:
            if pending.event is None:
                continue
            try:
                results.append(self._sink.apply([pending.event]))
            except PermanentError as exc:
                self._dead_letter([pending], exc)
        return results

    def _dead_letter(self, items: Iterable[Pending], exc: PermanentError) -> None:
        for pending in items:
            if pending.event is not None:
                reason = f"rejected by PostgreSQL: {exc}"
                self._dead_letters.send(pending.key, pending.value, reason, pending.source)
