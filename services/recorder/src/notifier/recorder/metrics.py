"""The recorder's Prometheus metrics (notifier_recorder_*), declared in one place.

A `RecorderMetrics` is built by `main` on the default registry; tests give each
loop its own registry so they can read the values.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)


class RecorderMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events_applied = Counter(
            "notifier_recorder_events_applied_total",
            "Status changes applied to a known message (whether or not they moved it).",
            ["status", "source"],
            registry=registry,
        )
        self.events_ignored = Counter(
            "notifier_recorder_events_ignored_total",
            "Status changes that named no known message (unknown_message, unknown_sid), "
            "or whose SID belongs to another message (sid_conflict: status applied, SID not).",
            ["reason"],
            registry=registry,
        )
        self.inbound_recorded = Counter(
            "notifier_recorder_inbound_recorded_total",
            "Inbound messages recorded (a redelivered copy of one on record is not counted).",
            registry=registry,
        )
        self.opt_outs = Counter(
            "notifier_recorder_opt_outs_total",
            "Opt-out changes applied to a number, by change (opt_out, opt_in); one older than "
            "the number's stored change is not applied and not counted.",
            ["change"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "notifier_recorder_dead_lettered_total",
            "Events that could not be decoded or applied, sent to the dead-letter topic.",
            registry=registry,
        )
        self.batch_size = Histogram(
            "notifier_recorder_batch_size",
            "Events per applied batch.",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_apply_duration = Histogram(
            "notifier_recorder_batch_apply_duration_seconds",
            "Time to apply one batch in PostgreSQL, commit included.",
            registry=registry,
        )
        self.status_lag = Histogram(
            "notifier_recorder_status_lag_seconds",
            "From when a status happened (callback received, API call made) to when it "
            "was applied.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "notifier_recorder_consumer_lag_messages",
            "Events behind the end of each events partition this replica consumes "
            "(librdkafka statistics; meaningful on Kafka, not on the dev stack's Tansu).",
            ["topic", "partition"],
            registry=registry,
        )
        self.db_errors = Counter(
            "notifier_recorder_db_errors_total",
            "Failed attempts to apply a batch (PostgreSQL unavailable or rejecting it).",
            registry=registry,
        )
