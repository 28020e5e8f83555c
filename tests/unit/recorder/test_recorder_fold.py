"""Folding one batch: the furthest status wins, each status is kept for history once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import Source, StatusChange
from notifier.common.domain.status import MessageStatus as S
from notifier.recorder.fold import MessageUpdate, fold_changes

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def change(
    status: S,
    message_id: int | None = 1,
    sid: str | None = None,
    at: int = 0,
    source: Source = Source.TWILIO,
    code: int | None = None,
    text: str | None = None,
) -> StatusChange:
    return StatusChange(
        message_id=MessageId(message_id) if message_id is not None else None,
        twilio_sid=TwilioSid(sid) if sid else None,
        status=status,
        occurred_at=T0 + timedelta(seconds=at),
        source=source,
        error_code=code,
        error_message=text,
    )


def only(updates: list[MessageUpdate]) -> MessageUpdate:
    assert len(updates) == 1
    return updates[0]


def test_out_of_order_callbacks_end_in_the_furthest_status() -> None:
    update = only(fold_changes([change(S.READ, at=3), change(S.SENT, at=1), change(S.DELIVERED)]))
    assert update.status is S.READ
    assert [h.status for h in update.history] == [S.READ, S.SENT, S.DELIVERED]


def test_duplicates_give_one_history_entry_the_first_report() -> None:
    update = only(fold_changes([change(S.SENT, at=1), change(S.SENT, at=9), change(S.SENT, at=5)]))
    assert update.status is S.SENT
    assert len(update.history) == 1
    assert update.history[0].occurred_at == T0 + timedelta(seconds=1)


def test_a_final_status_wins_over_progress_before_and_after_it() -> None:
    failed = change(S.FAILED, code=63016, text="outside the window")
    update = only(fold_changes([change(S.SENT), failed, change(S.READ)]))
    assert update.status is S.FAILED
    assert (update.error_code, update.error_message) == (63016, "outside the window")
    assert {h.status for h in update.history} == {S.SENT, S.FAILED, S.READ}


def test_the_first_final_status_reported_wins() -> None:
    update = only(fold_changes([change(S.UNDELIVERED, code=30008), change(S.FAILED, code=30001)]))
    assert update.status is S.UNDELIVERED
    assert update.error_code == 30008


def test_error_fields_are_only_kept_for_a_final_status() -> None:
    update = only(fold_changes([change(S.SENDING, code=20429, text="retried"), change(S.SENT)]))
    assert (update.error_code, update.error_message) == (None, None)
    assert update.history[0].error_code == 20429  # history keeps what each report said


def test_the_first_sid_seen_is_kept() -> None:
    update = only(
        fold_changes(
            [
                change(S.SENT),
                change(S.SENDING, sid="SMfirst", source=Source.SENDER),
                change(S.DELIVERED, sid="SMsecond"),
            ]
        )
    )
    assert update.twilio_sid == "SMfirst"
    sending = next(h for h in update.history if h.status is S.SENDING)
    assert sending.source is Source.SENDER


def test_each_message_gets_its_own_update_ordered_by_id() -> None:
    updates = fold_changes([change(S.SENT, message_id=7), change(S.READ, message_id=3),
                            change(S.DELIVERED, message_id=7)])  # fmt: skip
    assert [(u.message_id, u.status) for u in updates] == [(3, S.READ), (7, S.DELIVERED)]
    assert all(h.message_id == u.message_id for u in updates for h in u.history)


def test_changes_without_a_message_id_are_refused() -> None:
    with pytest.raises(ValueError):
        fold_changes([change(S.SENT, message_id=None, sid="SMx")])


# A message's journey: QUEUED -> SENDING, then progress, maybe ending in a final status.
_JOURNEYS = st.sampled_from(
    [
        [S.SENDING],
        [S.SENDING, S.SENT],
        [S.SENDING, S.SENT, S.DELIVERED],
        [S.SENDING, S.SENT, S.DELIVERED, S.READ],
        [S.SENDING, S.SENT, S.READ],  # WhatsApp may skip delivered
        [S.FAILED],
        [S.SENDING, S.FAILED],
        [S.SENDING, S.SENT, S.UNDELIVERED],
        [S.SENDING, S.SENT, S.DELIVERED, S.FAILED],
    ]
)


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[list[S], list[S]]:
    """A journey, and what the recorder receives: a permutation with duplicates."""
    journey = draw(_JOURNEYS)
    repeats = draw(st.lists(st.sampled_from(journey), max_size=8))
    received = draw(st.permutations(journey + repeats))
    return journey, list(received)


@given(_deliveries())
def test_folding_any_arrival_order_gives_the_furthest_status_and_each_status_once(
    case: tuple[list[S], list[S]],
) -> None:
    journey, received = case
    update = only(fold_changes([change(s, at=i) for i, s in enumerate(received)]))
    assert update.status is journey[-1]
    statuses = [h.status for h in update.history]
    assert sorted(statuses) == sorted(set(journey))
    assert len(statuses) == len(set(statuses))
