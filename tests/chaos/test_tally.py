"""The chaos run's verdict: what counts as lost, as a duplicate, and as in flight at a fault."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from tests.chaos.faults import FaultRecord
from tests.chaos.tally import Observed, in_flight_at, tally

KILL_AT = 1000.0


def observed(
    *,
    sends: Mapping[int, Sequence[float]],
    statuses: Mapping[int, str],
    left_queued_at: Mapping[int, float] | None = None,
    expected: Mapping[int, str] | None = None,
) -> Observed:
    return Observed(
        accepted={f"k{mid}": mid for mid in statuses},
        not_accepted={},
        retried_accepts=0,
        duplicate_answers=0,
        rows={mid: (f"k{mid}", status) for mid, status in statuses.items()},
        left_queued_at=left_queued_at or {mid: times[0] + 0.1 for mid, times in sends.items()},
        sends=sends,
        expected=expected or {},
        throttled=0,
    )


def kill() -> FaultRecord:
    return FaultRecord("sender", KILL_AT, 0.0, 2.0, "SIGKILL")


def test_every_message_sent_once_and_final_passes() -> None:
    result = tally(
        observed(
            sends={1: [10.0], 2: [11.0]},
            statuses={1: "READ", 2: "UNDELIVERED"},
            expected={2: "undelivered"},
        ),
        [kill()],
    )
    assert result.problems() == []
    assert (result.accepted, result.sent, result.extra_sends, len(result.lost)) == (2, 2, 0, 0)


def test_a_message_never_sent_or_stuck_is_lost() -> None:
    result = tally(
        observed(sends={1: [10.0], 2: [11.0]}, statuses={1: "SENT", 2: "READ", 3: "QUEUED"}),
        [],
    )
    assert result.never_sent == {3}
    assert result.not_final == {1, 3}
    assert result.lost == {1, 3}
    assert len(result.problems()) == 2


def test_a_message_told_to_fail_must_end_failed() -> None:
    result = tally(observed(sends={1: [10.0]}, statuses={1: "READ"}, expected={1: "failed"}), [])
    assert result.not_final == {1}


def test_an_accept_without_its_row_is_not_durable() -> None:
    facts = observed(sends={1: [10.0]}, statuses={1: "READ"})
    facts = dataclasses.replace(facts, accepted={"k1": 1, "k2": 2})
    assert tally(facts, []).missing_rows == {2}


def test_a_duplicate_in_flight_at_a_kill_is_allowed_and_counted() -> None:
    # Twilio took it just before the kill; we learnt of it only after: sent again.
    facts = observed(
        sends={1: [KILL_AT - 0.05, KILL_AT + 9.0], 2: [KILL_AT - 5.0]},
        statuses={1: "READ", 2: "READ"},
        left_queued_at={1: KILL_AT + 9.1, 2: KILL_AT - 4.9},
    )
    result = tally(facts, [kill()])
    assert result.duplicates == {1: 2}
    assert result.faults[0].in_flight == {1}
    assert result.faults[0].duplicates == {1}
    assert result.problems() == []


def test_a_duplicate_no_fault_explains_fails_the_run() -> None:
    facts = observed(sends={1: [10.0, 20.0]}, statuses={1: "READ"}, left_queued_at={1: 10.1})
    result = tally(facts, [kill()])
    assert result.unexplained_duplicates == {1}
    assert any("in flight at no fault" in p for p in result.problems())


def test_in_flight_means_at_twilio_by_the_moment_and_still_queued_for_us() -> None:
    sends = {1: [99.0], 2: [100.5], 3: [102.0], 4: [90.0]}
    left = {1: 101.0, 2: 101.0, 3: 103.0, 4: 95.0}
    # 1: at Twilio, not yet known; 2: on the wire (within the slack); 3: after; 4: known.
    assert in_flight_at(100.0, sends, left) == {1, 2}


def test_accepts_retried_across_a_fault_are_counted_against_it() -> None:
    facts = dataclasses.replace(
        observed(sends={1: [10.0]}, statuses={1: "READ"}),
        # across the fault (at 0 s, back at 2 s); long before; just after it was back
        retried_spans=[(-0.5, 1.5), (-30.0, -20.0), (2.5, 3.0)],
    )
    assert tally(facts, [kill()]).faults[0].retried_accepts == 1
