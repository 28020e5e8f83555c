"""Counting a chaos run: what was accepted, sent, duplicated and where each message ended. Pure.

The inputs are read back from the client's record, the database and the emulator's ledger
(`observe` in `harness`); the verdict and the tables come from here alone.

"In flight" at a fault is measured, not guessed: a message was in flight at moment T when
Twilio had accepted it by T (plus `SLACK_SECONDS` for a request already on the wire) and
our database did not yet know it had left QUEUED (its first later status was recorded
after T). Exactly those can be sent twice: a command is sent again only if, when it comes
back, its message is still QUEUED and the sender holding it has no memory of sending it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tests.chaos.faults import FaultRecord

SLACK_SECONDS = 1.0
FINAL = frozenset({"DELIVERED", "READ", "FAILED", "UNDELIVERED"})
# What a message may end as, by what the emulator was told to do with it.
ALLOWED_END = {
    "normal": frozenset({"DELIVERED", "READ"}),
    "undelivered": frozenset({"UNDELIVERED"}),
    "failed": frozenset({"FAILED"}),
}


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything read back after the run."""

    accepted: Mapping[str, int]  # idempotency key -> id, as the client got it
    not_accepted: Mapping[str, str]  # key -> the gRPC code the client gave up on
    retried_accepts: int  # accepts that took more than one call
    duplicate_answers: int  # answers that said "accepted before" (a retried accept)
    rows: Mapping[int, tuple[str, str]]  # id -> (idempotency key, status) in the database
    left_queued_at: Mapping[int, float]  # id -> when its first status after QUEUED was recorded
    sends: Mapping[int, Sequence[float]]  # id -> when Twilio accepted each create call for it
    expected: Mapping[int, str]  # id -> "normal" | "undelivered" | "failed"
    throttled: int  # create calls Twilio answered 429
    # (first call, answer) of each accept that took more than one call, monotonic clock
    retried_spans: Sequence[tuple[float, float]] = ()
    callbacks_failed: int = 0  # status callbacks the emulator gave up posting


@dataclass(frozen=True, slots=True)
class FaultTally:
    record: FaultRecord
    in_flight: frozenset[int]
    duplicates: frozenset[int]  # duplicated ids that were in flight at this fault
    retried_accepts: int  # accepts retried across the fault (refused while it lasted)


@dataclass(frozen=True, slots=True)
class Tally:
    accepted: int
    not_accepted: Mapping[str, str]
    retried_accepts: int
    duplicate_answers: int
    missing_rows: frozenset[int]  # accepted ids with no row (or another key): not durable
    sent: int  # accepted ids Twilio accepted at least once
    create_calls: int
    never_sent: frozenset[int]
    duplicates: Mapping[int, int]  # id -> times sent, for ids sent more than once
    statuses: Mapping[str, Counter[str]]  # expected kind -> final status -> count
    not_final: frozenset[int]  # accepted ids not at a status allowed for their kind
    faults: Sequence[FaultTally]
    throttled: int
    unexplained_duplicates: frozenset[int] = field(default_factory=frozenset)
    callbacks_failed: int = 0

    @property
    def extra_sends(self) -> int:
        return sum(n - 1 for n in self.duplicates.values())

    @property
    def in_flight(self) -> frozenset[int]:
        return frozenset().union(*(f.in_flight for f in self.faults))

    @property
    def lost(self) -> frozenset[int]:
        return self.missing_rows | self.never_sent | self.not_final

    def problems(self) -> list[str]:
        """Every way the run broke a guarantee; empty when it passed."""
        found = []
        if self.not_accepted:
            found.append(
                f"{len(self.not_accepted)} messages never accepted: "
                f"{dict(Counter(self.not_accepted.values()))}"
            )
        if self.missing_rows:
            found.append(f"accepted but not in the database: {_some(self.missing_rows)}")
        if self.never_sent:
            found.append(f"accepted but never sent to Twilio: {_some(self.never_sent)}")
        if self.not_final:
            found.append(f"not at a final status: {_some(self.not_final)}")
        if self.extra_sends > len(self.in_flight):
            found.append(
                f"{self.extra_sends} duplicate sends, more than the "
                f"{len(self.in_flight)} messages in flight at the faults"
            )
        if self.unexplained_duplicates:
            found.append(
                f"sent twice but in flight at no fault: {_some(self.unexplained_duplicates)}"
            )
        return found


def tally(observed: Observed, records: Sequence[FaultRecord]) -> Tally:
    accepted = set(observed.accepted.values())
    missing = frozenset(
        mid
        for key, mid in observed.accepted.items()
        if mid not in observed.rows or observed.rows[mid][0] != key
    )
    # Every row of the run's keys counts, even one whose answer never reached the client.
    ids = accepted | set(observed.rows)
    sends = {mid: sorted(observed.sends.get(mid, ())) for mid in ids}
    duplicates = {mid: len(times) for mid, times in sends.items() if len(times) > 1}
    statuses: dict[str, Counter[str]] = {}
    not_final = set()
    for mid in ids:
        kind = observed.expected.get(mid, "normal")
        status = observed.rows[mid][1] if mid in observed.rows else "MISSING"
        statuses.setdefault(kind, Counter())[status] += 1
        if status not in ALLOWED_END[kind]:
            not_final.add(mid)
    faults = [_fault_tally(record, sends, observed, duplicates) for record in records]
    explained = frozenset().union(*(f.in_flight for f in faults))
    return Tally(
        accepted=len(accepted),
        not_accepted=observed.not_accepted,
        retried_accepts=observed.retried_accepts,
        duplicate_answers=observed.duplicate_answers,
        missing_rows=missing,
        sent=sum(1 for times in sends.values() if times),
        create_calls=sum(len(times) for times in sends.values()),
        never_sent=frozenset(mid for mid, times in sends.items() if not times),
        duplicates=duplicates,
        statuses=statuses,
        not_final=frozenset(not_final),
        faults=faults,
        throttled=observed.throttled,
        unexplained_duplicates=frozenset(duplicates) - explained,
        callbacks_failed=observed.callbacks_failed,
    )


def in_flight_at(
    moment: float, sends: Mapping[int, Sequence[float]], left_queued_at: Mapping[int, float]
) -> frozenset[int]:
    """Ids Twilio had accepted by `moment` (+ slack) that were still QUEUED for us then."""
    return frozenset(
        mid
        for mid, times in sends.items()
        if times
        and times[0] <= moment + SLACK_SECONDS
        and left_queued_at.get(mid, float("inf")) > moment
    )


def _fault_tally(
    record: FaultRecord,
    sends: Mapping[int, Sequence[float]],
    observed: Observed,
    duplicates: Mapping[int, int],
) -> FaultTally:
    flying = in_flight_at(record.at_wall, sends, observed.left_queued_at)
    retried = sum(
        1 for first, answer in observed.retried_spans
        if first <= record.recovered and answer >= record.at
    )  # fmt: skip
    return FaultTally(record, flying, frozenset(flying & set(duplicates)), retried)


def _some(ids: Iterable[int], shown: int = 10) -> str:
    ordered = sorted(ids)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return f"{len(ordered)} ({', '.join(map(str, ordered[:shown]))}{more})"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A Markdown table (pastes into docs as it is)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
