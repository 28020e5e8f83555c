"""The dispatcher's scheduling, order, retries and bookkeeping, with a fake poster (no sockets)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import pytest

from notifier.twilio_emulator.callback_log import CallbackLog, Outcome
from notifier.twilio_emulator.callback_plan import CallbackSettings, PlannedCallback
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID
from notifier.twilio_emulator.dispatcher import CallbackDispatcher
from notifier.twilio_emulator.ledger import RecordedMessage
from notifier.twilio_emulator.webhook_client import PostFailed, PostResult
from tests.fixtures.waiting import wait_until

URL = "http://hooks.internal/webhook/status?mid=9"
SETTINGS = CallbackSettings(retry_backoff=0.001, attempts=3)


class FakePoster:
    """Answers from a script (an int status or PostFailed) per URL; 200 once it runs out."""

    def __init__(self, calls: list[tuple[str, str, str | None]], script: list[int | None]) -> None:
        self._calls = calls
        self._script = script
        self._lock = threading.Lock()

    def post(
        self,
        url: str,
        params: Mapping[str, str],
        auth_token: str,
        *,
        timeout: float | None = None,
        idempotency_token: str | None = None,
    ) -> PostResult:
        with self._lock:
            self._calls.append((params["MessageStatus"], auth_token, idempotency_token))
            answer = self._script.pop(0) if self._script else 200
        if answer is None:
            raise PostFailed("ConnectionRefusedError: [Errno 111] Connection refused")
        return PostResult(answer, "", "")

    def close(self) -> None:
        pass


class Harness:
    def __init__(self) -> None:
        self.log = CallbackLog()
        self.calls: list[tuple[str, str, str | None]] = []
        self.script: list[int | None] = []
        self.dispatcher = CallbackDispatcher(
            self.log, workers=3, poster_factory=lambda: FakePoster(self.calls, self.script)
        )

    def schedule(self, *statuses: str, url: str = URL, delay: float = 0.0) -> None:
        plan = [PlannedCallback(s, delay + i * 0.001) for i, s in enumerate(statuses)]
        self.dispatcher.schedule(message(url), plan, SETTINGS, "tok3n")

    def settled(self) -> bool:
        stats = self.log.stats()
        return stats.scheduled > 0 and stats.pending == 0


def message(url: str | None = URL, sid: str = "SM" + "1" * 32) -> RecordedMessage:
    return RecordedMessage(
        sid=sid,
        account_sid=DEFAULT_ACCOUNT_SID,
        arrived_at=0.0,
        to="whatsapp:+447700900123",
        from_="whatsapp:+14155238886",
        messaging_service_sid=None,
        content_sid=None,
        content_variables=None,
        body="hi",
        status_callback=url,
        mid="9",
        status="queued",
    )


@pytest.fixture
def harness() -> Iterator[Harness]:
    running = Harness()
    running.dispatcher.start()
    yield running
    running.dispatcher.stop()


def test_one_messages_callbacks_are_posted_in_planned_order(harness: Harness) -> None:
    statuses = ["sent", "delivered", "read", "sent", "read"]
    harness.schedule(*statuses)
    wait_until(harness.settled)
    assert [status for status, _, _ in harness.calls] == statuses
    assert {token for _, token, _ in harness.calls} == {"tok3n"}
    assert harness.log.stats().sent == {"sent": 2, "delivered": 1, "read": 2}


def test_a_refused_post_and_a_5xx_are_retried_with_the_same_idempotency_token(
    harness: Harness,
) -> None:
    harness.script[:] = [None, 502]
    harness.schedule("read")
    wait_until(harness.settled)
    assert len(harness.calls) == 3
    assert len({idempotency for _, _, idempotency in harness.calls}) == 1
    stats = harness.log.stats()
    assert (stats.sent, stats.retried, stats.failed) == ({"read": 1}, 2, 0)
    [record] = harness.log.records()
    assert (record.outcome, record.http_status, record.attempts) == (Outcome.OK, 200, 3)


def test_after_the_last_attempt_the_callback_counts_as_failed(harness: Harness) -> None:
    harness.script[:] = [None, None, None]
    harness.schedule("sent")
    wait_until(harness.settled)
    [record] = harness.log.records()
    assert (record.outcome, record.http_status, record.attempts) == (Outcome.FAILED, None, 3)
    assert record.error is not None and "refused" in record.error
    assert harness.log.stats().failed_by_status == {"sent": 1}


def test_a_4xx_answer_is_not_retried_but_429_is(harness: Harness) -> None:
    harness.script[:] = [400]
    harness.schedule("sent")
    wait_until(harness.settled)
    harness.script[:] = [429]
    harness.schedule("read")
    wait_until(lambda: harness.log.stats().sent.get("read") == 1)
    assert [status for status, _, _ in harness.calls] == ["sent", "read", "read"]
    assert harness.log.stats().failed == 1


def test_documentation_hosts_are_skipped_without_a_post(harness: Harness) -> None:
    harness.schedule("sent", "delivered", url="https://hooks.example.com/webhook/status")
    wait_until(harness.settled)
    assert harness.calls == []
    assert harness.log.stats().skipped == 2


def test_nothing_is_scheduled_without_a_callback_url_or_a_plan(harness: Harness) -> None:
    harness.dispatcher.schedule(message(url=None), [PlannedCallback("sent", 0)], SETTINGS, "t")
    harness.dispatcher.schedule(message(), [], SETTINGS, "t")
    assert harness.log.stats().scheduled == 0


def test_a_reset_forgets_callbacks_not_yet_due(harness: Harness) -> None:
    harness.schedule("read", delay=60)
    assert harness.log.stats().pending == 1
    harness.dispatcher.cancel_all()
    harness.log.reset()
    harness.schedule("sent")
    wait_until(harness.settled)
    assert [status for status, _, _ in harness.calls] == ["sent"]


def test_stop_returns_promptly_with_callbacks_still_waiting() -> None:
    harness = Harness()
    harness.dispatcher.start()
    harness.schedule("read", delay=60)
    harness.dispatcher.stop(timeout=5)
    assert harness.calls == []
    with pytest.raises(ValueError, match="workers"):
        CallbackDispatcher(CallbackLog(), workers=0)
