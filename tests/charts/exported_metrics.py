"""The metric names each process really exports, read from the registries the processes build.

A PromQL name is a sample name: a counter `x` exports `x_total` (and `x_created`), a histogram
`h` exports `h_bucket`, `h_sum`, `h_count`. Labelled metrics without children export no sample
yet, so names are derived from the metric families, not from a scrape.
"""

from __future__ import annotations

import re

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Series Prometheus makes for every target itself.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def _sample_names(registry: CollectorRegistry, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        if family.name.startswith(prefix):
            names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return names


def _default_collectors() -> set[str]:
    """What prometheus_client's default REGISTRY adds: process_*, python_gc_*, python_info."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return _sample_names(registry)


def exported_names() -> dict[str, set[str]]:
    """process -> the sample names its /metrics serves."""
    # The gateway and the sender declare their metrics on the default REGISTRY at import,
    # and serve REGISTRY (notifier.common.metrics.start_metrics_server).
    import notifier.gateway.metrics
    import notifier.sender.metrics  # noqa: F401
    from notifier.recorder.metrics import RecorderMetrics
    from notifier.webhook.metrics import WebhookMetrics

    defaults = _default_collectors()
    recorder = CollectorRegistry()
    RecorderMetrics(recorder)  # main() builds it on REGISTRY, which the metrics server serves
    webhook = CollectorRegistry()
    WebhookMetrics(webhook)  # gunicorn's master serves only the workers' multiprocess files
    return {
        "gateway": _sample_names(REGISTRY, "notifier_gateway_") | defaults,
        "sender": _sample_names(REGISTRY, "notifier_sender_") | defaults,
        "recorder": _sample_names(recorder) | defaults,
        "webhook": _sample_names(webhook),
        # kopf serves a liveness endpoint only: the operator exports no metrics.
        "operator": set(),
    }


_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"bool", "offset", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana's label_values()) selects."""
    label_values = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # label values, strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names
