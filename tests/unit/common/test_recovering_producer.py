"""RecoveringProducer: a fatal error replaces the producer; anything else passes through.

The real case (a Tansu broker restarted under an idempotent producer) is exercised in
tests/integration/sender/test_sender_broker_restart.py; here a scripted stand-in shows
which error leads to a replacement and what happens to the old producer's records.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from notifier.common.kafka import RecoveringProducer, is_fatal

FATAL = KafkaError(KafkaError._FATAL, "sequence desynchronization", fatal=True)
TRANSIENT = KafkaError(KafkaError._TRANSPORT, "broker down")
ALL_DOWN = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")


class ScriptedProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[str] = []
        self.fail_next: KafkaError | None = None
        self.purged = False
        self.flushed: list[float] = []

    def produce(self, topic: str, value: bytes | None = None, **kwargs: Any) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise KafkaException(error)
        self.produced.append(topic)
        self.on_delivery = kwargs["on_delivery"]

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.flushed.append(timeout)
        return 0

    def purge(self) -> None:
        self.purged = True

    def __len__(self) -> int:
        return 0


class Factory:
    def __init__(self) -> None:
        self.made: list[ScriptedProducer] = []

    def __call__(self, config: dict[str, Any]) -> ScriptedProducer:
        self.made.append(ScriptedProducer(config))
        return self.made[-1]


def test_fatal_error_on_produce_replaces_the_producer_and_produces_on_the_new_one() -> None:
    factory = Factory()
    producer = RecoveringProducer({"bootstrap.servers": "x"}, factory)
    factory.made[0].fail_next = FATAL

    producer.produce("events", b"v")

    first, second = factory.made
    assert first.produced == [] and second.produced == ["events"]
    assert first.purged, "the old producer's records must be failed at once"
    assert producer.replacements == 1


def test_fatal_error_reported_by_the_error_callback_replaces_before_the_next_produce() -> None:
    factory = Factory()
    seen: list[KafkaError] = []
    producer = RecoveringProducer({"error_cb": seen.append}, factory)

    factory.made[0].config["error_cb"](FATAL)  # what librdkafka calls from poll()
    producer.produce("events", b"v")

    assert len(factory.made) == 2 and factory.made[1].produced == ["events"]
    assert seen == [FATAL], "the caller's own error callback still hears of it"


def test_a_transient_error_is_raised_and_keeps_the_producer() -> None:
    factory = Factory()
    producer = RecoveringProducer({}, factory)
    factory.made[0].fail_next = TRANSIENT

    with pytest.raises(KafkaException):
        producer.produce("events", b"v")

    assert len(factory.made) == 1 and producer.replacements == 0
    factory.made[0].config["error_cb"](TRANSIENT)
    producer.produce("events", b"v")
    assert len(factory.made) == 1


def test_all_brokers_down_replaces_the_producer_at_most_once_per_outage() -> None:
    factory = Factory()
    producer = RecoveringProducer({}, factory)

    factory.made[0].config["error_cb"](ALL_DOWN)
    producer.poll(0)
    factory.made[1].config["error_cb"](ALL_DOWN)  # the new one cannot connect either
    producer.poll(0)

    assert len(factory.made) == 2, "a producer built during the outage is kept"


def test_a_timed_out_record_replaces_the_producer_and_still_reaches_its_caller() -> None:
    factory = Factory()
    producer = RecoveringProducer({}, factory)
    reports: list[Any] = []
    producer.produce("events", b"v", on_delivery=lambda error, _msg: reports.append(error))

    factory.made[0].on_delivery(TIMED_OUT, None)
    producer.produce("events", b"w")

    assert reports == [TIMED_OUT]
    assert len(factory.made) == 2 and factory.made[1].produced == ["events"]


def test_is_fatal_tells_fatal_errors_apart() -> None:
    assert is_fatal(FATAL)
    assert not is_fatal(TRANSIENT)
    assert not is_fatal("not a kafka error")


class ServingProducer(ScriptedProducer):
    """Calls the last record's delivery report from inside poll(), as librdkafka does."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.report: KafkaError | None = None
        self.polls = 0

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        if self.report is not None:
            error, self.report = self.report, None
            self.on_delivery(error, None)
            return 1
        return 0


def test_a_report_that_produces_again_does_not_replace_the_producer_inside_its_poll() -> None:
    made: list[ServingProducer] = []

    def factory(config: dict[str, Any]) -> ServingProducer:
        made.append(ServingProducer(config))
        return made[-1]

    producer = RecoveringProducer({}, factory)
    during_callback: list[int] = []

    def again(error: Any, _message: Any) -> None:
        if error is not None:
            producer.produce("events", b"v", on_delivery=again)  # as the sender does
            during_callback.append(len(made))

    producer.produce("events", b"v", on_delivery=again)
    made[0].report = TIMED_OUT  # the replacement is wanted while its poll serves reports
    producer.poll(0)

    assert during_callback == [1], "no replacement (and no nested poll) inside the callback"
    assert made[0].produced == ["events", "events"] and made[0].polls == 1
    producer.poll(0)  # outside any callback: now it is replaced, the record purged
    assert len(made) == 2 and made[0].purged and producer.replacements == 1
