import json

from prometheus_client import CollectorRegistry, Gauge

from notifier.common.consumer_lag import lag_reporter


def _stats(partitions: dict[str, dict[str, object]]) -> str:
    return json.dumps({"topics": {"whatsapp.outbound.v1": {"partitions": partitions}}})


def _value(registry: CollectorRegistry, partition: str) -> float | None:
    return registry.get_sample_value(
        "lag_messages", {"topic": "whatsapp.outbound.v1", "partition": partition}
    )


def test_active_partitions_report_their_lag_and_revoked_ones_disappear() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("lag_messages", "lag", ["topic", "partition"], registry=registry)
    report = lag_reporter(gauge)

    report(_stats({
        "0": {"fetch_state": "active", "consumer_lag": 42},
        "1": {"fetch_state": "active", "consumer_lag": 0},
        "2": {"fetch_state": "none", "consumer_lag": 7},  # not ours
        "-1": {"fetch_state": "none", "consumer_lag": -1},  # librdkafka's internal partition
    }))  # fmt: skip
    assert _value(registry, "0") == 42
    assert _value(registry, "1") == 0
    assert _value(registry, "2") is None

    report(_stats({"1": {"fetch_state": "active", "consumer_lag": 5}}))
    assert _value(registry, "0") is None
    assert _value(registry, "1") == 5


def test_unknown_lag_and_garbage_are_ignored() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("lag_messages", "lag", ["topic", "partition"], registry=registry)
    report = lag_reporter(gauge)
    report(_stats({"0": {"fetch_state": "active", "consumer_lag": -1}}))
    report("not json")
    assert _value(registry, "0") is None
