"""SendService: the status check, the StatusCallback URL and the result events."""

from __future__ import annotations

from notifier.common.domain.messages import Source
from notifier.common.domain.status import MessageStatus
from notifier.sender import metrics
from notifier.sender.recent_sends import RecentSends
from notifier.sender.service import (
    Accepted,
    Failed,
    PermanentApiError,
    SendService,
    Sent,
    SentBefore,
    Skipped,
)
from tests.unit.sender.sender_fakes import T0, FakeMessagesApi, FakeSink, FakeStatuses, command


def service(
    statuses: FakeStatuses | None = None, sink: FakeSink | None = None
) -> tuple[SendService, FakeMessagesApi, FakeSink]:
    api, sink = FakeMessagesApi(), sink or FakeSink()
    svc = SendService(
        api, statuses or FakeStatuses(), sink, "https://hooks.example.com/", lambda: T0
    )
    return svc, api, sink


def test_the_status_callback_carries_our_message_id() -> None:
    svc, api, _ = service()
    svc.attempt(command(42))
    [(_, url, _)] = api.calls
    assert url == "https://hooks.example.com/webhook/status?mid=42"


def test_only_queued_messages_are_sent() -> None:
    statuses = FakeStatuses(statuses={2: MessageStatus.SENDING, 3: MessageStatus.FAILED})
    svc, _, _ = service(statuses)
    assert svc.check(command(1)) is None
    assert svc.check(command(2)) == Skipped("already_handled")
    assert svc.check(command(3)) == Skipped("already_handled")


def test_a_recipient_who_opted_out_fails_the_message_with_21610_before_any_call() -> None:
    svc, api, _ = service(FakeStatuses(opted_out={4: "STOP"}))
    assert svc.check(command(4)) == Failed(
        21610, "not sent: the recipient opted out (STOP) after the message was accepted"
    )
    assert svc.check(command(5)) is None
    assert api.calls == []


def test_a_message_that_left_queued_is_skipped_even_if_its_recipient_opted_out() -> None:
    statuses = FakeStatuses(statuses={4: MessageStatus.SENDING}, opted_out={4: "STOP"})
    svc, _, _ = service(statuses)
    assert svc.check(command(4)) == Skipped("already_handled")


def test_an_unknown_message_is_skipped() -> None:
    svc, _, _ = service(FakeStatuses(default=None))
    assert svc.check(command(9)) == Skipped("unknown_message")


def test_a_send_is_reported_as_sending_with_the_sid() -> None:
    svc, _, sink = service()
    acked: list[bool] = []
    svc.report(command(5), Sent(Accepted("SM1", "queued")), 2, lambda: acked.append(True))  # type: ignore[arg-type]
    [event] = sink.events
    assert (event.message_id, event.status, event.twilio_sid) == (5, MessageStatus.SENDING, "SM1")
    assert (event.source, event.attempts, event.occurred_at) == (Source.SENDER, 2, T0)
    assert acked == [True]


def test_a_failure_is_reported_with_the_twilio_code_and_message() -> None:
    svc, _, sink = service()
    svc.report(command(5), Failed(21211, "invalid To"), 1, lambda: None)
    [event] = sink.events
    assert (event.status, event.error_code, event.error_message) == (
        MessageStatus.FAILED,
        21211,
        "invalid To",
    )


def test_a_skip_publishes_nothing_but_is_done_at_once() -> None:
    svc, _, sink = service()
    acked: list[bool] = []
    svc.report(command(5), Skipped("already_handled"), 0, lambda: acked.append(True))
    assert sink.events == []
    assert acked == [True]


def test_permanent_api_errors_keep_code_and_status() -> None:
    error = PermanentApiError("not a mobile number", 21614, 400)
    assert (error.code, error.http_status, error.message) == (21614, 400, "not a mobile number")


def test_a_message_sent_lately_is_reported_again_without_a_status_check_or_a_call() -> None:
    statuses = FakeStatuses()
    clock = [100.0]
    api, sink = FakeMessagesApi(), FakeSink()
    svc = SendService(api, statuses, sink, "https://hooks.example.com/", lambda: T0,
                      recent=RecentSends(), clock=lambda: clock[0])  # fmt: skip
    accepted = svc.attempt(command(6))
    clock[0] += 3599
    checks = statuses.checks
    verdict = svc.check(command(6))
    assert verdict == SentBefore(accepted.sid)
    assert statuses.checks == checks  # answered from memory: the database may be down
    before = metrics.SKIPPED.labels("recently_sent")._value.get()
    acked: list[bool] = []
    svc.report(command(6), verdict, 0, lambda: acked.append(True))
    [event] = sink.events
    assert (event.status, event.twilio_sid, event.source) == (
        MessageStatus.SENDING, accepted.sid, Source.SENDER,
    )  # fmt: skip
    assert acked == [True] and len(api.calls) == 1
    assert metrics.SKIPPED.labels("recently_sent")._value.get() == before + 1
    clock[0] += 2  # an hour and a second after the send: forgotten, checked as usual
    assert svc.check(command(6)) is None
