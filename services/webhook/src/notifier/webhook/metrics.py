"""The webhook's Prometheus metrics (notifier_webhook_*), declared in one place.

Under gunicorn, prometheus_client runs in multiprocess mode: each worker writes its
values to files in PROMETHEUS_MULTIPROC_DIR and the master serves their sum
(gunicorn_conf). Each app gets its own registry, so tests can read the values and
several apps in one process do not clash; in multiprocess mode the files are what count.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "notifier_webhook_requests_total",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "notifier_webhook_request_duration_seconds",
            "Time to answer a request, the wait for Kafka's acknowledgement included.",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.published = Counter(
            "notifier_webhook_published_total",
            "Events published to Kafka and acknowledged, by kind (status, inbound).",
            ["kind"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "notifier_webhook_ignored_total",
            "Signed callbacks answered 200 but not published, by reason (unknown_status).",
            ["reason"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "notifier_webhook_signature_failures_total",
            "Requests refused with 403: X-Twilio-Signature missing or not matching.",
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "notifier_webhook_publish_failures_total",
            "Events Kafka did not acknowledge in time (answered 503, Twilio retries).",
            registry=self.registry,
        )

    def answered(self, route: str, code: int, seconds: float | None) -> None:
        """Counts one answered request, and its duration when it was timed."""
        self.requests.labels(route, str(code)).inc()
        if seconds is not None:
            self.request_duration.labels(route).observe(seconds)
