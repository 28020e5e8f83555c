"""Consumer lag per partition, from librdkafka's statistics, as a Prometheus gauge.

The broker's view of lag needs correct high watermarks; librdkafka reports, for
each partition this consumer fetches, how far its position is behind the end.
(Tansu's watermarks are wrong, so under the dev stack the figure is not
meaningful; on Kafka it is the lag alerts should use.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from prometheus_client import Gauge

log = logging.getLogger(__name__)

# How often librdkafka emits statistics; each emission updates the gauge.
STATISTICS_INTERVAL_MS = 15_000


def lag_reporter(gauge: Gauge) -> Callable[[str], None]:
    """A librdkafka `stats_cb` that sets gauge{topic, partition} to the consumer lag.

    Partitions this consumer no longer fetches (revoked) are removed from the gauge,
    so a replica never reports lag it is not responsible for.
    """
    reported: set[tuple[str, str]] = set()

    def report(stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
        except ValueError:
            log.debug("unreadable librdkafka statistics")
            return
        current: dict[tuple[str, str], int] = {}
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, p in topic_stats.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if partition != "-1" and p.get("fetch_state") == "active" and lag >= 0:
                    current[(topic, partition)] = int(lag)
        for key in reported - current.keys():
            gauge.remove(*key)
        for (topic, partition), lag in current.items():
            gauge.labels(topic, partition).set(lag)
        reported.clear()
        reported.update(current)

    return report


def lag_overrides(gauge: Gauge) -> dict[str, object]:
    """Consumer configuration that feeds `gauge` from librdkafka's statistics."""
    return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": lag_reporter(gauge)}
