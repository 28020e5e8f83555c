"""The reconciler with fake ports: only the leader fetches, what moved is published as
Twilio's callback would have been, the unchanged are asked again later, errors stop a pass."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import Source
from notifier.common.domain.status import MessageStatus
from notifier.sender.reconcile_plan import Candidate, Cursor, TwilioState
from notifier.sender.reconciler import Reconciler, ReconcileSettings, fetch_concurrency
from notifier.sender.service import PermanentApiError, TransientApiError
from tests.unit.sender.sender_fakes import T0, FakeSink


@dataclass
class FakeStale:
    rows: list[Candidate]
    leading: bool = True
    pages: int = 0

    def lead(self) -> bool:
        return self.leading

    def candidates(self, cursor: Cursor | None, limit: int) -> list[Candidate]:
        self.pages += 1
        after = [r for r in self.rows if cursor is None or (r.updated_at, r.message_id) > cursor]
        return after[:limit]

    def resign(self) -> None:
        self.leading = False


@dataclass
class FakeStatusApi:
    states: dict[str, TwilioState | Exception]
    fetched: list[str] = field(default_factory=list)

    def fetch(self, sid: TwilioSid) -> TwilioState:
        self.fetched.append(sid)
        state = self.states[sid]
        if isinstance(state, Exception):
            raise state
        return state


def row(n: int, status: MessageStatus) -> Candidate:
    return Candidate(MessageId(n), TwilioSid(f"SM{n:032x}"), status, T0 + timedelta(seconds=n))


def reconciler(
    rows: list[Candidate], states: dict[int, TwilioState | Exception], batch: int = 10
) -> tuple[Reconciler, FakeStale, FakeStatusApi, FakeSink]:
    store, sink = FakeStale(rows), FakeSink()
    api = FakeStatusApi({f"SM{n:032x}": s for n, s in states.items()})
    ticks = itertools.count()
    # A clock that ticks 1 ms per reading: the fetch pace (1000/s) never makes a test wait.
    settings = ReconcileSettings(interval_seconds=1, after_seconds=60, batch=batch,
                                 fetches_per_second=1000)  # fmt: skip
    return (
        Reconciler(store, api, sink, settings, lambda: next(ticks) / 1000, lambda: T0),
        store,
        api,
        sink,
    )


def test_what_moved_at_twilio_is_published_as_its_callback_would_have_been() -> None:
    rows = [row(1, MessageStatus.SENDING), row(2, MessageStatus.SENT),
            row(3, MessageStatus.DELIVERED)]  # fmt: skip
    states: dict[int, TwilioState | Exception] = {
        1: TwilioState("read"),
        2: TwilioState("undelivered", 30008, "Unknown error"),
        3: TwilioState("delivered"),
    }
    rec, _, api, sink = reconciler(rows, states)
    assert rec.run_once() == 3
    assert [
        (e.message_id, e.status, e.twilio_sid, e.source, e.error_code) for e in sink.events
    ] == [
        (1, MessageStatus.READ, rows[0].sid, Source.TWILIO, None),
        (2, MessageStatus.UNDELIVERED, rows[1].sid, Source.TWILIO, 30008),
    ]
    assert sink.events[1].error_message == "Unknown error"
    # Asked again at once, nothing is fetched twice: 1 and 2 moved (the recorder will
    # update them), 3 is backing off.
    rows.remove(rows[1])
    rows.remove(rows[0])
    assert rec.run_once() == 0 and len(api.fetched) == 3


def test_a_replica_that_does_not_lead_fetches_nothing() -> None:
    rec, store, api, _ = reconciler([row(1, MessageStatus.SENT)], {1: TwilioState("read")})
    store.leading = False
    assert rec.run_once() == 0
    assert api.fetched == [] and store.pages == 0


def test_a_transient_error_ends_the_pass_and_a_missing_message_backs_off() -> None:
    rows = [row(n, MessageStatus.SENT) for n in (1, 2, 3)]
    states: dict[int, TwilioState | Exception] = {
        1: PermanentApiError("not found", 20404, 404),
        2: TransientApiError("busy", reason="throttled", http_status=429),
        3: TwilioState("read"),
    }
    rec, _, api, sink = reconciler(rows, states)
    assert rec.run_once() == 2
    assert sink.events == []
    states_after = {2: TwilioState("read"), 3: TwilioState("read")}
    api.states.update({f"SM{n:032x}": s for n, s in states_after.items()})
    assert rec.run_once() == 2  # 2 and 3; 1 waits for its pause
    assert [e.message_id for e in sink.events] == [2, 3]


def test_each_pass_takes_one_batch_and_the_next_resumes_after_it() -> None:
    rows = [row(n, MessageStatus.DELIVERED) for n in range(1, 8)]
    rec, _, api, _ = reconciler(rows, {n: TwilioState("delivered") for n in range(1, 8)}, batch=3)
    assert [rec.run_once() for _ in range(3)] == [3, 3, 1]
    assert api.fetched == [r.sid for r in rows]


def test_fetches_overlap_so_twilio_latency_does_not_cap_the_rate() -> None:
    """At 200 ms a GET, one at a time allows 5 a second whatever the configured rate; the
    chaos run waited minutes for lost statuses that way. Three fetches must be in flight
    at once here, or the barrier breaks."""
    rows = [row(n, MessageStatus.DELIVERED) for n in range(1, 7)]
    together = threading.Barrier(3, timeout=5)

    class SlowApi(FakeStatusApi):
        def fetch(self, sid: TwilioSid) -> TwilioState:
            together.wait()
            return super().fetch(sid)

    store, sink = FakeStale(rows), FakeSink()
    api = SlowApi({r.sid: TwilioState("read") for r in rows})
    ticks = itertools.count()
    settings = ReconcileSettings(interval_seconds=1, after_seconds=60, batch=10,
                                 fetches_per_second=1000, concurrency=3)  # fmt: skip
    rec = Reconciler(store, api, sink, settings, lambda: next(ticks) / 1000, lambda: T0)
    try:
        assert rec.run_once() == 6
    finally:
        rec.stop()
    # Published in the order the messages were picked, whatever order the answers came.
    assert [e.message_id for e in sink.events] == [1, 2, 3, 4, 5, 6]


def test_the_concurrency_reaches_the_rate_at_a_second_a_get_within_bounds() -> None:
    assert [fetch_concurrency(r) for r in (0.1, 1, 10, 12.5, 100)] == [1, 1, 10, 13, 32]
