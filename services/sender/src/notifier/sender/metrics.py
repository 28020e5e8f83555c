"""The sender's Prometheus metrics, named notifier_sender_<thing>_<unit>.

Declared once here and updated by the service (outcomes, Twilio latency), the
scheduler (retries, waits, slots) and the consumer (dead letters, polls).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Twilio answers in ~100-300 ms; timeouts reach TWILIO_TIMEOUT_SECONDS.
_API_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
# Waits range from nothing (a free slot) to the pair interval (6 s) and beyond.
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SENT = Counter(
    "notifier_sender_sent_total",
    "Messages Twilio accepted (reported SENDING with their SID).",
)
FAILED = Counter(
    "notifier_sender_failed_total",
    "Messages reported FAILED, by Twilio error code ('none' when no code came back; 21610 "
    "also for a recipient found opted out just before the call, which is then not made).",
    ["code"],
)
RETRIES = Counter(
    "notifier_sender_retries_total",
    "Twilio calls scheduled again after a transient error, by reason.",
    ["reason"],
)
SKIPPED = Counter(
    "notifier_sender_skipped_total",
    "Commands not sent, by reason (already_handled: the message left QUEUED; unknown_message; "
    "recently_sent: this replica sent it within the hour, its SENDING result is reported again).",
    ["reason"],
)
DEAD_LETTERED = Counter(
    "notifier_sender_dead_lettered_total",
    "Undecodable commands copied to the dead-letter topic.",
)
RATE_LIMIT_WAIT = Histogram(
    "notifier_sender_rate_limit_wait_seconds",
    "Time a ready message waited for a rate limit, by limit (global = the number's slots, "
    "pair = the per-recipient limit).",
    ["limit"],
    buckets=_WAIT_BUCKETS,
)
RATE_SLOTS = Counter(
    "notifier_sender_rate_slots_total",
    "Global send slots leased, by what became of them (used, late = thrown away because the "
    "call was not ready to be written in time and would crowd the next slots, abandoned = "
    "its message was cancelled or its request could not be built).",
    ["outcome"],
)
LEASE_ERRORS = Counter(
    "notifier_sender_rate_lease_errors_total",
    "Slot leases that failed (PostgreSQL unavailable); sending pauses until one succeeds.",
)
TWILIO_DURATION = Histogram(
    "notifier_sender_twilio_request_duration_seconds",
    "Twilio Messages API create calls, by outcome (ok, retry, fail).",
    ["outcome"],
    buckets=_API_BUCKETS,
)
IN_FLIGHT = Gauge(
    "notifier_sender_in_flight",
    "Messages taken by a worker: checking status, waiting for a slot or calling Twilio.",
)
BUFFERED = Gauge(
    "notifier_sender_buffered_commands",
    "Commands polled and not yet done (waiting, in flight or awaiting the broker's ack).",
)
PAUSED_PARTITIONS = Gauge(
    "notifier_sender_paused_partitions",
    "Outbound partitions paused because too many of their commands are buffered.",
)
CONSUMER_LAG = Gauge(
    "notifier_sender_consumer_lag_messages",
    "Send commands behind the end of each outbound partition this replica consumes "
    "(librdkafka statistics; meaningful on Kafka, not on the dev stack's Tansu).",
    ["topic", "partition"],
)
LAST_POLL = Gauge(
    "notifier_sender_last_poll_timestamp_seconds",
    "Unix time of the consumer loop's last poll; /healthz fails when it is 30 s old.",
)
RECONCILED = Counter(
    "notifier_sender_reconciled_total",
    "Statuses the reconciler found further along at Twilio than in our records (callbacks "
    "lost for good) and published, by the status published.",
    ["status"],
)
RECONCILE_FETCHES = Counter(
    "notifier_sender_reconcile_fetches_total",
    "Messages the reconciler fetched from Twilio, by outcome (moved, unchanged, not_found, error).",
    ["outcome"],
)
RECONCILE_LEADER = Gauge(
    "notifier_sender_reconcile_leader",
    "1 while this replica holds the reconciler's lock and runs its passes, else 0.",
)
