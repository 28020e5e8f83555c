"""The gateway's Prometheus metrics, named notifier_gateway_<thing>_<unit>.

Declared once here and updated by the interceptor (requests), the service
(accepts), the outbox (publishes) and the catalog (templates).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Accepts are one DB round trip: most land in the low milliseconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "notifier_gateway_requests_total",
    "gRPC calls handled, by method and status code.",
    ["method", "code"],
)
REQUEST_DURATION = Histogram(
    "notifier_gateway_request_duration_seconds",
    "Time to handle a gRPC call, by method.",
    ["method"],
    buckets=_LATENCY_BUCKETS,
)
MESSAGES_ACCEPTED = Counter(
    "notifier_gateway_messages_accepted_total",
    "Messages stored durably (new ones only), by template.",
    ["template"],
)
MESSAGES_DUPLICATE = Counter(
    "notifier_gateway_messages_duplicate_total",
    "SendTemplateMessage retries answered with the first message's id.",
)
OUTBOX_PUBLISHED = Counter(
    "notifier_gateway_outbox_published_total",
    "Send commands the broker acknowledged right after their accept.",
)
OUTBOX_REPUBLISHED = Counter(
    "notifier_gateway_outbox_republished_total",
    "Send commands the relay published again and the broker acknowledged.",
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "notifier_gateway_outbox_publish_errors_total",
    "Produce attempts that failed or were not acknowledged (the relay retries them).",
)
OUTBOX_BACKLOG = Gauge(
    "notifier_gateway_outbox_backlog_rows",
    "Unpublished outbox rows older than OUTBOX_RELAY_AFTER_SECONDS in the relay's last pass "
    "(capped at its batch size).",
)
TEMPLATES = Gauge(
    "notifier_gateway_templates",
    "Enabled templates in the gateway's catalog.",
)
TEMPLATE_REFRESH_ERRORS = Counter(
    "notifier_gateway_template_refresh_errors_total",
    "Template catalog refreshes that failed (the last good catalog stays in use).",
)
