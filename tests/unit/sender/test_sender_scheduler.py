"""The scheduler with fake ports: outcomes, retries, the pair limit, revoke and stop.

Real threads and the real clock (the scheduler's waits are real), with slots spaced
1 ms apart and short intervals, so every test finishes in well under a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from notifier.common.domain.messages import SendCommand
from notifier.common.domain.status import MessageStatus
from notifier.sender.classify import RetryPolicy
from notifier.sender.pacer import SlotPacer
from notifier.sender.ratelimit import RecipientBuckets
from notifier.sender.recent_sends import RecentSends
from notifier.sender.recipients import PartitionKey, RecipientQueues
from notifier.sender.scheduler import Scheduler
from notifier.sender.service import (
    Accepted,
    Go,
    NotSent,
    PermanentApiError,
    SendService,
    TransientApiError,
)
from tests.fixtures.waiting import wait_until
from tests.unit.sender.sender_fakes import (
    FakeLeaser,
    FakeMessagesApi,
    FakeSink,
    FakeStatuses,
    command,
)

TOPIC = "whatsapp.outbound.v1"


@dataclass
class Harness:
    api: FakeMessagesApi
    statuses: FakeStatuses
    sink: FakeSink
    leaser: FakeLeaser
    scheduler: Scheduler
    done: list[tuple[PartitionKey, int]] = field(default_factory=list)

    def submit(self, message_id: int, to: str = "+447700900001", partition: int = 0) -> None:
        self.scheduler.submit(command(message_id, to), (TOPIC, partition), message_id)

    def wait_done(self, count: int) -> None:
        wait_until(lambda: len(self.done) >= count, timeout=5, message=lambda: f"{self.done}")

    def statuses_by_id(self) -> dict[int, MessageStatus]:
        return {int(e.message_id or 0): e.status for e in self.sink.events}


def build(
    *,
    errors: list[Exception] | None = None,
    pair_interval: float = 0.0,
    pair_burst: int = 1,
    max_attempts: int = 3,
    concurrency: int = 8,
    api_delay: float = 0.0,
    recent: RecentSends | None = None,
) -> Harness:
    api = FakeMessagesApi(errors=list(errors or []), clock=time.monotonic)
    if api_delay:
        original = api.create

        def slow(cmd: SendCommand, url: str, go: Go) -> Accepted:
            # The round trip comes after the write, so after go() said yes.
            if not go():
                raise NotSent("given up before sending")
            threading.Event().wait(api_delay)
            return original(cmd, url, lambda: True)

        api.create = slow  # type: ignore[method-assign,assignment]
    statuses = FakeStatuses()
    sink = FakeSink()
    leaser = FakeLeaser(time.monotonic, spacing=0.001)
    service = SendService(api, statuses, sink, "https://hooks.example.com/", recent=recent)
    pacer = SlotPacer(leaser, 0.001, 0.01, late_tolerance=0.05)
    done: list[tuple[PartitionKey, int]] = []
    scheduler = Scheduler(
        service,
        pacer,
        RecipientQueues(RecipientBuckets(pair_interval, pair_burst)),
        lambda partition, offset: done.append((partition, offset)),
        concurrency=concurrency,
        retry=RetryPolicy(max_attempts, base=0.01, cap=0.02),
    )
    return Harness(api, statuses, sink, leaser, scheduler, done)


Make = Callable[..., Harness]


@pytest.fixture
def make() -> Iterator[Make]:
    """`make(**options)` builds and starts a scheduler; all are stopped after the test."""
    started: list[Scheduler] = []

    def factory(**options: Any) -> Harness:
        harness = build(**options)
        started.append(harness.scheduler.start())
        return harness

    yield factory
    for scheduler in started:
        scheduler.stop(grace=2)


def test_every_command_is_sent_once_and_reported(make: Make) -> None:
    h = make()
    for i in range(1, 21):
        h.submit(i, to=f"+4477009000{i:02d}")
    h.wait_done(20)
    assert sorted(offset for _, offset in h.done) == list(range(1, 21))
    assert len(h.api.calls) == 20
    assert set(h.statuses_by_id().values()) == {MessageStatus.SENDING}
    assert all(e.twilio_sid and e.attempts == 1 for e in h.sink.events)
    _, callback, _ = h.api.calls[0]
    assert callback.startswith("https://hooks.example.com/webhook/status?mid=")


def test_a_call_that_reaches_the_write_after_its_slot_waits_for_another_slot(make: Make) -> None:
    h = make()
    original = h.api.create
    stalls = [0.08]  # the first call's request takes longer to build than the 50 ms allowed

    def slow_to_build(cmd: SendCommand, url: str, go: Go) -> Accepted:
        if stalls:
            threading.Event().wait(stalls.pop())
        return original(cmd, url, go)

    h.api.create = slow_to_build  # type: ignore[method-assign]
    late_before = slot_count("late")
    h.submit(1)
    h.wait_done(1)
    # It waited for a later slot with its request built, and went out then: one call.
    assert (h.api.refused, len(h.api.calls)) == (0, 1)
    [event] = h.sink.events
    assert (event.status, event.attempts) == (MessageStatus.SENDING, 1)
    assert slot_count("late") - late_before >= 1


def slot_count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("notifier_sender_rate_slots_total", {"outcome": outcome})
    return value or 0.0


def test_a_message_that_left_queued_is_skipped_without_a_call(
    make: Make,
) -> None:
    h = make()
    h.statuses.statuses[7] = MessageStatus.SENDING
    h.statuses.statuses[8] = MessageStatus.DELIVERED
    h.submit(7)
    h.submit(8)
    h.wait_done(2)
    assert h.api.calls == []
    assert h.sink.events == []


def test_a_recipient_who_opted_out_while_the_message_waited_gets_failed_and_no_call(
    make: Make,
) -> None:
    h = make()
    h.statuses.opted_out[7] = "STOP"
    h.submit(7)
    h.submit(8, to="+447700900002")
    h.wait_done(2)
    assert [c.message_id for c, _, _ in h.api.calls] == [8]
    [failed] = [e for e in h.sink.events if e.message_id == 7]
    assert (failed.status, failed.error_code, failed.attempts) == (MessageStatus.FAILED, 21610, 0)
    assert failed.error_message is not None and "opted out (STOP)" in failed.error_message


def test_an_opt_out_during_a_retry_backoff_stops_the_retry(make: Make) -> None:
    h = make(errors=[TransientApiError("boom", reason="server_error", http_status=500)])
    original = h.api.create

    def create_then_opt_out(cmd: SendCommand, url: str, go: Go) -> Accepted:
        h.statuses.opted_out[cmd.message_id] = "UNSUBSCRIBE"  # lands during the backoff
        return original(cmd, url, go)

    h.api.create = create_then_opt_out  # type: ignore[method-assign]
    h.submit(1)
    h.wait_done(1)
    assert len(h.api.calls) == 1
    [event] = h.sink.events
    assert (event.status, event.error_code, event.attempts) == (MessageStatus.FAILED, 21610, 1)


def test_a_transient_error_is_retried_then_sent(make: Make) -> None:
    h = make(errors=[TransientApiError("boom", reason="server_error", http_status=500)])
    h.submit(1)
    h.wait_done(1)
    assert len(h.api.calls) == 2
    [event] = h.sink.events
    assert event.status is MessageStatus.SENDING
    assert event.attempts == 2


def test_a_permanent_error_fails_at_once_with_its_code(make: Make) -> None:
    h = make(errors=[PermanentApiError("unsubscribed recipient", 21610, 400)])
    h.submit(1)
    h.wait_done(1)
    assert len(h.api.calls) == 1
    [event] = h.sink.events
    assert (event.status, event.error_code) == (MessageStatus.FAILED, 21610)
    assert event.error_message == "unsubscribed recipient"


def test_retries_stop_after_max_attempts_with_the_last_error(
    make: Make,
) -> None:
    errors: list[Exception] = [
        TransientApiError("busy", reason="throttled", http_status=429, code=20429) for _ in range(5)
    ]
    h = make(errors=errors, max_attempts=3)
    h.submit(1)
    h.wait_done(1)
    assert len(h.api.calls) == 3
    [event] = h.sink.events
    assert (event.status, event.error_code, event.attempts) == (MessageStatus.FAILED, 20429, 3)


def test_a_database_outage_delays_the_check_without_using_an_attempt(
    make: Make,
) -> None:
    h = make()
    h.statuses.failures = 2
    h.submit(1)
    h.wait_done(1)
    [event] = h.sink.events
    assert (event.status, event.attempts) == (MessageStatus.SENDING, 1)


def test_a_slot_lease_outage_pauses_sending_then_recovers(
    make: Make,
) -> None:
    h = make()
    h.leaser.failures = 2
    h.submit(1)
    h.wait_done(1)
    assert len(h.api.calls) == 1


def test_the_pair_limit_spaces_one_recipients_messages(make: Make) -> None:
    h = make(pair_interval=0.3, pair_burst=1)
    h.submit(1, to="+447700900001")
    h.submit(2, to="+447700900001")
    h.submit(3, to="+447700900002")
    h.wait_done(3)
    at = {int(c.message_id): t for c, _, t in h.api.calls}
    assert at[2] - at[1] >= 0.3
    assert at[3] - at[1] < 0.2  # the other recipient did not wait
    assert [int(c.message_id) for c, _, _ in h.api.calls if c.to == "+447700900001"] == [1, 2]


def test_a_retrying_recipient_does_not_hold_up_others(make: Make) -> None:
    h = make(
        errors=[TransientApiError("down", reason="server_error", http_status=503)] * 2,
        max_attempts=5,
    )
    h.submit(1, to="+447700900001")
    h.submit(2, to="+447700900002")
    h.wait_done(2)
    order = [int(c.message_id) for c, _, _ in h.api.calls]
    assert order.count(1) == 2 or order.count(2) == 2  # whichever got the errors


def test_revoke_drops_waiting_commands_of_the_partition(make: Make) -> None:
    h = make(pair_interval=10.0, pair_burst=1)
    h.submit(1, to="+447700900001", partition=0)
    h.submit(2, to="+447700900001", partition=0)  # waits 10 s for the pair limit
    h.submit(3, to="+447700900002", partition=1)
    h.wait_done(2)
    assert h.scheduler.revoke([(TOPIC, 0)], timeout=1) == 0
    assert sorted(offset for _, offset in h.done) == [1, 3]
    assert [int(c.message_id) for c, _, _ in h.api.calls] in ([1, 3], [3, 1])


def test_stop_lets_calls_in_progress_finish(make: Make) -> None:
    h = make(api_delay=0.2)
    h.submit(1)
    # The fake API records a call when it answers, 0.2 s after it started.
    wait_until(lambda: h.scheduler.in_flight == 1 and not h.api.calls, timeout=2)
    assert h.scheduler.stop(grace=2) == 0
    assert [offset for _, offset in h.done] == [1]


def test_an_unexpected_error_counts_as_an_attempt_and_ends_failed(
    make: Make,
) -> None:
    h = make(errors=[RuntimeError("bug")] * 3, max_attempts=3)
    h.submit(1)
    h.wait_done(1)
    [event] = h.sink.events
    assert (event.status, event.attempts) == (MessageStatus.FAILED, 3)


def test_a_command_that_comes_back_after_its_send_is_reported_again_not_sent(
    make: Make,
) -> None:
    h = make(recent=RecentSends())
    h.submit(1)
    h.wait_done(1)
    # The same command again (republished after the broker lost it, say): the status
    # still reads QUEUED because the first SENDING event never reached the recorder.
    h.scheduler.submit(command(1), (TOPIC, 0), 2)
    h.wait_done(2)
    assert len(h.api.calls) == 1
    first, again = h.sink.events
    assert (again.status, again.twilio_sid) == (MessageStatus.SENDING, first.twilio_sid)


def test_a_call_finishing_after_its_partition_was_disowned_marks_no_offset(
    make: Make,
) -> None:
    h = make(api_delay=0.2)
    h.submit(1)
    wait_until(lambda: h.scheduler.in_flight == 1 and not h.api.calls, timeout=2)
    h.scheduler.disown([(TOPIC, 0)])
    wait_until(lambda: h.scheduler.in_flight == 0, timeout=2)
    # Reported (its SENDING event exists) but its offset is not: the partition is gone.
    assert [e.status for e in h.sink.events] == [MessageStatus.SENDING]
    assert h.done == []
