"""EventStore against a real PostgreSQL: statuses only move forward, history once per status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from notifier.common.domain.messages import Source, StatusChange
from notifier.common.domain.status import MessageStatus as S
from notifier.common.errors import TransientError
from notifier.recorder.store import ApplyResult, EventStore, IgnoreReason
from tests.integration.recorder.message_rows import Messages, Row, event, new_sid

pytestmark = pytest.mark.integration


def test_out_of_order_events_in_one_batch_end_in_the_furthest_status(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    sid = new_sid()
    store.apply(
        [
            event(mid, S.READ, at=4),
            event(mid, S.SENT, at=2),
            event(mid, S.DELIVERED, at=3),
            event(mid, S.SENDING, sid=sid, at=1, source=Source.SENDER),
            event(mid, S.SENT, at=2),
        ]
    )
    assert messages.row(mid) == Row(S.READ, sid, None, None)
    assert messages.history(mid) == {
        S.SENDING: ("sender", None),
        S.SENT: ("twilio", None),
        S.DELIVERED: ("twilio", None),
        S.READ: ("twilio", None),
    }


def test_applying_a_batch_again_changes_nothing(store: EventStore, messages: Messages) -> None:
    ids = messages.create(3)
    batch = [event(i, s, sid=f"SM{i:032x}" if s is S.SENDING else None) for i in ids
             for s in (S.SENDING, S.SENT, S.DELIVERED)]  # fmt: skip
    first = store.apply(batch)
    assert (len(first.changed), first.history_rows) == (3, 9)
    again = store.apply(batch)
    assert (again.changed, again.history_rows) == ((), 0)
    assert len(again.applied) == 9  # known messages: applied, idempotently
    assert {r.status for r in messages.rows(ids).values()} == {S.DELIVERED}
    assert messages.history_rows(ids) == 9


def test_read_is_never_overwritten_by_a_late_sent_or_delivered(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    for status in (S.READ, S.SENT, S.DELIVERED, S.SENDING, S.QUEUED):
        store.apply([event(mid, status)])
        assert messages.row(mid).status is S.READ
    # Every status the message reached is in its history, once, even those that came late.
    assert set(messages.history(mid)) == {S.READ, S.SENT, S.DELIVERED, S.SENDING, S.QUEUED}


def test_failed_keeps_its_code_and_message_and_nothing_moves_it_after(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    store.apply([event(mid, S.SENT)])
    store.apply([event(mid, S.FAILED, code=63016, text="outside the 24h window")])
    store.apply([event(mid, S.READ), event(mid, S.DELIVERED)])
    store.apply([event(mid, S.UNDELIVERED, code=30008, text="unknown error")])
    assert messages.row(mid) == Row(S.FAILED, None, 63016, "outside the 24h window")
    assert messages.history(mid)[S.FAILED] == ("twilio", 63016)


def test_undelivered_after_delivered_is_kept_with_its_code(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    store.apply([event(mid, S.DELIVERED)])
    store.apply([event(mid, S.UNDELIVERED, code=30003, text="unreachable")])
    assert messages.row(mid) == Row(S.UNDELIVERED, None, 30003, "unreachable")


def test_callbacks_that_name_only_a_sid_are_applied_to_its_message(
    store: EventStore, messages: Messages
) -> None:
    stored, same_batch = messages.create(2)
    sid_stored, sid_batch = new_sid(), new_sid()
    store.apply([event(stored, S.SENDING, sid=sid_stored, source=Source.SENDER)])
    result = store.apply(
        [
            event(None, S.DELIVERED, sid=sid_stored),
            # The callback comes before the sender's result that carries the SID.
            event(None, S.SENT, sid=sid_batch),
            event(same_batch, S.SENDING, sid=sid_batch, source=Source.SENDER),
        ]
    )
    assert result.ignored == ()
    assert messages.row(stored) == Row(S.DELIVERED, sid_stored, None, None)
    assert messages.row(same_batch) == Row(S.SENT, sid_batch, None, None)
    assert set(messages.history(same_batch)) == {S.SENDING, S.SENT}


def test_a_sending_result_after_a_later_callback_still_records_the_sid(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    sid = new_sid()
    store.apply([event(mid, S.DELIVERED)])
    result = store.apply([event(mid, S.SENDING, sid=sid, source=Source.SENDER)])
    assert result.changed == ((mid, S.DELIVERED),)
    assert messages.row(mid) == Row(S.DELIVERED, sid, None, None)
    assert messages.history(mid)[S.SENDING] == ("sender", None)
    # Once stored, a SID is never replaced.
    store.apply([event(mid, S.READ, sid=new_sid())])
    assert messages.row(mid) == Row(S.READ, sid, None, None)


def test_unknown_ids_and_sids_are_ignored_without_failing_the_batch(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    unknown_id, unknown_sid = 2**62, new_sid()
    result = store.apply(
        [event(unknown_id, S.SENT), event(None, S.READ, sid=unknown_sid), event(mid, S.SENT)]
    )
    assert [(i.change.message_id, i.change.twilio_sid, i.reason) for i in result.ignored] == [
        (unknown_id, None, IgnoreReason.UNKNOWN_MESSAGE),
        (None, unknown_sid, IgnoreReason.UNKNOWN_SID),
    ]
    assert [c.message_id for c in result.applied] == [mid]
    assert messages.row(mid).status is S.SENT
    assert messages.history_rows([unknown_id]) == 0


def test_a_sid_that_belongs_to_another_message_is_not_copied(
    store: EventStore, messages: Messages
) -> None:
    first, second = messages.create(2)
    sid = new_sid()
    store.apply([event(first, S.SENDING, sid=sid, source=Source.SENDER)])
    result = store.apply([event(second, S.SENDING, sid=sid, source=Source.SENDER)])
    assert [c.message_id for c in result.sid_conflicts] == [second]
    assert messages.row(second) == Row(S.SENDING, None, None, None)
    assert messages.row(first).twilio_sid == sid


def test_sids_are_resolved_whether_their_owner_is_named_in_the_batch_or_not(
    store: EventStore, messages: Messages
) -> None:
    # SIDs already stored on a message the batch names by id are settled by that row;
    # the others (a SID-only callback, a SID another message holds) by their own lookup.
    named, unnamed, claimant, other_claimant = messages.create(4)
    sid_named, sid_unnamed = new_sid(), new_sid()
    store.apply([event(named, S.SENDING, sid=sid_named, source=Source.SENDER),
                 event(unnamed, S.SENDING, sid=sid_unnamed, source=Source.SENDER)])  # fmt: skip
    result = store.apply(
        [
            event(named, S.SENT, sid=sid_named),
            event(None, S.DELIVERED, sid=sid_named),
            event(claimant, S.SENDING, sid=sid_named, source=Source.SENDER),
            event(None, S.SENT, sid=sid_unnamed),
            event(other_claimant, S.SENDING, sid=sid_unnamed, source=Source.SENDER),
        ]
    )
    assert result.ignored == ()
    assert sorted(c.message_id for c in result.sid_conflicts) == sorted([claimant, other_claimant])
    assert messages.row(named) == Row(S.DELIVERED, sid_named, None, None)
    assert messages.row(unnamed) == Row(S.SENT, sid_unnamed, None, None)
    assert messages.row(claimant) == Row(S.SENDING, None, None, None)
    assert messages.row(other_claimant) == Row(S.SENDING, None, None, None)


@pytest.mark.parametrize(
    "text",
    ['say "hi"', "back\\slash", "{braces},comma", "NULL", "", "  spaced  ", "ünïcødé ✓"],
)
def test_error_text_is_stored_exactly_as_received(
    store: EventStore, messages: Messages, text: str
) -> None:
    [mid] = messages.create()
    store.apply([event(mid, S.UNDELIVERED, code=30008, text=text)])
    assert messages.row(mid) == Row(S.UNDELIVERED, None, 30008, text)


def test_text_with_nul_characters_is_stored_without_them(
    store: EventStore, messages: Messages
) -> None:
    [mid] = messages.create()
    store.apply([event(mid, S.FAILED, code=30007, text="carrier\x00 filtered")])
    assert messages.row(mid) == Row(S.FAILED, None, 30007, "carrier filtered")


def _apply_retrying(store: EventStore, batch: Sequence[StatusChange]) -> ApplyResult:
    # Two writers locking the same rows may deadlock; PostgreSQL aborts one and
    # the recorder retries it as a TransientError, as this does.
    for _ in range(20):
        try:
            return store.apply(batch)
        except TransientError:
            continue
    raise AssertionError("batch kept failing")


@pytest.mark.parametrize(
    ("one", "other", "expected"),
    [
        (S.SENT, S.READ, S.READ),
        (S.DELIVERED, S.SENT, S.DELIVERED),
        (S.READ, S.FAILED, S.FAILED),
    ],
)
def test_the_sql_guard_holds_when_two_stores_race(
    store_factory: Callable[[], EventStore],
    messages: Messages,
    one: S,
    other: S,
    expected: S,
) -> None:
    stores = [store_factory(), store_factory()]
    for _round in range(4):
        ids = messages.create(300)
        _race(stores, [[event(i, one) for i in ids], [event(i, other) for i in reversed(ids)]])
        assert {row.status for row in messages.rows(ids).values()} == {expected}
        assert messages.history_rows(ids) == 2 * len(ids)


def _race(stores: list[EventStore], batches: list[list[StatusChange]]) -> None:
    """Applies each batch with its own store, both starting at the same moment."""
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: EventStore, batch: list[StatusChange]) -> None:
        try:
            start.wait(timeout=10)
            _apply_retrying(store, batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=p) for p in zip(stores, batches, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
