"""What an applied batch did, told to Prometheus and the log.

INFO gets one line per batch and one per inbound message recorded (masked number,
SID, opt-out change; never the body); each status change goes to DEBUG (one per
event would be too many lines); ignored events are WARNINGs naming the message id
or SID, never a phone number.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from notifier.common.domain.phone import mask
from notifier.recorder.inbound_store import InboundOutcome
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
            for outcome in result.inbound:
                self._inbound(outcome)
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
                "inbound": sum(len(r.inbound) for r in results),
                "duration_ms": round(duration * 1000, 1),
            },
        )

    def _inbound(self, outcome: InboundOutcome) -> None:
        message = outcome.message
        context = {
            "twilio_sid": message.twilio_sid,
            "from": mask(message.from_number),
            "opt_change": outcome.opt_change.value if outcome.opt_change else None,
            "opt_applied": outcome.opt_applied,
        }
        if outcome.opt_applied and outcome.opt_change is not None:
            self._metrics.opt_outs.labels(outcome.opt_change.value).inc()
        if not outcome.recorded:
            log.debug("inbound message already on record", extra=context)
            return
        self._metrics.inbound_recorded.inc()
        log.info(
            "inbound message recorded",
            extra={**context, "order_id": outcome.order_id, "num_media": message.num_media},
        )
