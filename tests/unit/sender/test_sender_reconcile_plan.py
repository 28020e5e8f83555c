"""The reconciler's pure parts: does Twilio's status move ours, when to ask again, and the
walk over quiet messages that resumes where it stopped."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.status import MessageStatus
from notifier.sender.reconcile_plan import (
    Candidate,
    CheckBackoff,
    Scan,
    TwilioState,
    further_status,
)
from tests.unit.sender.sender_fakes import T0

SENDING, SENT, DELIVERED, READ, UNDELIVERED = (
    MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ,
    MessageStatus.UNDELIVERED,
)  # fmt: skip


def candidate(n: int, status: MessageStatus = SENT) -> Candidate:
    return Candidate(MessageId(n), TwilioSid(f"SM{n:032x}"), status, T0 + timedelta(seconds=n))


@pytest.mark.parametrize(
    ("ours", "twilios", "expected"),
    [
        (SENDING, "sent", SENT),
        (SENDING, "read", READ),
        (SENT, "undelivered", UNDELIVERED),
        (DELIVERED, "read", READ),
        (DELIVERED, "delivered", None),
        (DELIVERED, "sent", None),
        (SENDING, "queued", None),
        (SENT, "partially_delivered", None),  # a word we do not track
    ],
)
def test_only_a_status_further_along_than_ours_counts(
    ours: MessageStatus, twilios: str, expected: MessageStatus | None
) -> None:
    assert further_status(ours, TwilioState(twilios)) == expected


def test_an_unchanged_message_is_asked_again_after_growing_pauses() -> None:
    backoff = CheckBackoff(first_pause=10, factor=4, max_pause=100)
    c = candidate(1, DELIVERED)
    now = 0.0
    pauses = []
    for _ in range(4):
        assert backoff.is_due(c, now)
        backoff.unchanged(c, now)
        start = now
        while not backoff.is_due(c, now):
            now += 1
        pauses.append(now - start)
    assert pauses == [10, 40, 100, 100]


def test_a_message_whose_stored_status_changed_is_due_at_once() -> None:
    backoff = CheckBackoff(first_pause=10)
    backoff.unchanged(candidate(1, SENT), 0.0)
    assert not backoff.is_due(candidate(1, SENT), 5.0)
    assert backoff.is_due(candidate(1, DELIVERED), 5.0)
    backoff.unchanged(candidate(1, DELIVERED), 5.0)  # a fresh series: the first pause again
    assert backoff.is_due(candidate(1, DELIVERED), 15.0)


def test_a_moved_message_is_forgotten_and_memory_is_bounded() -> None:
    backoff = CheckBackoff(first_pause=10, capacity=2)
    for n in (1, 2, 3):
        backoff.unchanged(candidate(n), 0.0)
    assert len(backoff) == 2 and backoff.is_due(candidate(1), 0.0)  # 1 was forgotten
    backoff.moved(candidate(3))
    assert len(backoff) == 1 and backoff.is_due(candidate(3), 0.0)


def test_the_walk_takes_due_messages_and_resumes_after_the_last_one_looked_at() -> None:
    backoff = CheckBackoff(first_pause=100)
    scan = Scan(backoff, page_size=4)
    for n in (2, 3):
        backoff.unchanged(candidate(n), 0.0)  # checked lately: skipped
    page = [candidate(n) for n in (1, 2, 3, 4)]
    taken, ended = scan.take(page, 1.0, wanted=10)
    assert ([c.message_id for c in taken], ended) == ([1, 4], False)
    assert scan.cursor == (candidate(4).updated_at, 4)
    # The next page is short: the window ended, and the walk starts over next time.
    taken, ended = scan.take([candidate(5)], 1.0, wanted=10)
    assert ([c.message_id for c in taken], ended, scan.cursor) == ([5], True, None)


def test_a_full_batch_stops_the_walk_at_the_last_one_taken() -> None:
    scan = Scan(CheckBackoff(first_pause=100), page_size=3)
    taken, ended = scan.take([candidate(n) for n in (1, 2)], 0.0, wanted=1)
    assert ([c.message_id for c in taken], ended) == ([1], False)
    assert scan.cursor == (candidate(1).updated_at, 1)
