"""What an applied batch did, told to Prometheus and the log.

INFO gets one line per batch; each status change goes to DEBUG (one per event
would be too many lines); ignored events are WARNINGs naming the message id or
SID, never a phone number.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from notifier.recorder.metrics import RecorderMetrics
from notifier.recorder.store import ApplyResult

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BatchReport:
    def __init__(
        self, metrics: RecorderMetrics, wall_clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._metrics = metrics
        self._wall_clock = wall_clock

    def failed(self) -> None:
        self._metrics.db_errors.inc()

    def applied(self, results: Sequence[ApplyResult], events: int, duration: float) -> None:
        m = self._metrics
        m.batch_size.observe(events)
        m.batch_apply_duration.observe(duration)
        now = self._wall_clock()
        by_label: Counter[tuple[str, str]] = Counter()
        for result in results:
            for change in result.applied:
                by_label[(change.status.value, change.source.value)] += 1
                m.status_lag.observe(max(0.0, (now - change.occurred_at).total_seconds()))
            for ignored in result.ignored:
                m.events_ignored.labels(ignored.reason.value).inc()
                log.warning(
                    "status change for an unknown message ignored",
                    extra={
                        "reason": ignored.reason.value,
                        "message_id": ignored.change.message_id,
                        "twilio_sid": ignored.change.twilio_sid,
                        "status": ignored.change.status.value,
                    },
                )
            for change in result.sid_conflicts:
                m.events_ignored.labels("sid_conflict").inc()
                log.warning(
                    "Twilio SID already belongs to another message; status applied without it",
                    extra={"message_id": change.message_id, "twilio_sid": change.twilio_sid},
                )
            if log.isEnabledFor(logging.DEBUG):
                for message_id, status in result.changed:
                    log.debug(
                        "message status recorded",
                        extra={"message_id": message_id, "status": status.value},
                    )
        for (status_name, source), count in by_label.items():
            m.events_applied.labels(status_name, source).inc(count)
        log.info(
            "batch applied",
            extra={
                "events": events,
                "applied": sum(len(r.applied) for r in results),
                "ignored": sum(len(r.ignored) for r in results),
                "messages_changed": sum(len(r.changed) for r in results),
                "history_rows": sum(r.history_rows for r in results),
                "duration_ms": round(duration * 1000, 1),
            },
        )
