"""AcceptWriter: concurrent accepts share a batch, and one bad row fails only itself."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg2
import pytest
from gateway_fakes import CATALOG, SEED

from notifier.common.domain.ids import MessageId
from notifier.common.errors import TransientError
from notifier.gateway.model import (
    Accept,
    AcceptCommand,
    AcceptOutcome,
    Existing,
    Inserted,
    OptedOut,
    SessionRequest,
)
from notifier.gateway.validation import validate_send, validate_session
from notifier.gateway.writer import AcceptWriter

NOW = datetime(2025, 1, 2, tzinfo=UTC)


def command(order_id: str) -> AcceptCommand:
    return validate_send(
        dataclasses.replace(SEED, parameters={"order_id": order_id}, order_id=order_id), CATALOG
    )


class FakeBatchStore:
    """Numbers rows by order id; a batch holding order "BAD" fails as a statement would."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str | None]] = []
        self._gate = gate

    def insert_many(self, commands: Sequence[AcceptCommand]) -> list[Inserted | Existing]:
        if self._gate is not None:
            self._gate.wait(5)
        self.batches.append([c.order_id for c in commands])
        if any(c.order_id == "BAD" for c in commands):
            raise psycopg2.IntegrityError("violates a constraint")
        return [Inserted(MessageId(int((c.order_id or "0")[2:])), NOW) for c in commands]


def test_each_request_gets_its_own_result() -> None:
    writer = AcceptWriter(FakeBatchStore()).start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda n: writer.insert(command(f"O-{n}")), range(1, 41)))
    finally:
        writer.stop()
    assert [r.message_id for r in results] == list(range(1, 41))


def test_requests_queued_while_a_batch_commits_share_the_next_one() -> None:
    gate = threading.Event()
    store = FakeBatchStore(gate)
    writer = AcceptWriter(store, writers=1).start()
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(writer.insert, command(f"O-{n}")) for n in range(1, 7)]
            gate.set()
            assert sorted(f.result(5).message_id for f in futures) == [1, 2, 3, 4, 5, 6]
    finally:
        writer.stop()
    assert len(store.batches) < 6


def test_a_bad_row_fails_only_its_own_request() -> None:
    gate = threading.Event()
    writer = AcceptWriter(FakeBatchStore(gate), writers=1).start()
    try:
        with ThreadPoolExecutor(3) as pool:
            good = [pool.submit(writer.insert, command(f"O-{n}")) for n in (1, 2)]
            bad = pool.submit(writer.insert, command("BAD"))
            gate.set()
            assert sorted(f.result(5).message_id for f in good) == [1, 2]
            with pytest.raises(RuntimeError) as caught:
                bad.result(5)
    finally:
        writer.stop()
    assert isinstance(caught.value.__cause__, psycopg2.IntegrityError)


def test_a_stopped_writer_refuses_new_work() -> None:
    writer = AcceptWriter(FakeBatchStore()).start()
    writer.stop()
    with pytest.raises(TransientError):
        writer.insert(command("O-1"))


class SignallingStore(FakeBatchStore):
    """Also says when a batch has reached the database."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__(gate)
        self.entered = threading.Event()

    def insert_many(self, commands: Sequence[AcceptCommand]) -> list[Inserted | Existing]:
        self.entered.set()
        return super().insert_many(commands)


def test_stop_waits_for_the_batch_being_written() -> None:
    gate = threading.Event()
    store = SignallingStore(gate)
    writer = AcceptWriter(store, writers=1).start()
    with ThreadPoolExecutor(2) as pool:
        accepted = pool.submit(writer.insert, command("O-1"))
        assert store.entered.wait(5)
        stopping = pool.submit(writer.stop)
        with pytest.raises(TimeoutError):
            stopping.result(timeout=0.2)
        gate.set()
        stopping.result(5)
        assert accepted.result(0).message_id == 1


def test_session_and_template_commands_each_get_their_own_outcome() -> None:
    class MixedStore:
        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        def insert_many(self, commands: Sequence[Accept]) -> list[AcceptOutcome]:
            self.batches.append([type(c).__name__ for c in commands])
            return [
                OptedOut() if c.phone_number == "+447700900999" else Inserted(MessageId(n), NOW)
                for n, c in enumerate(commands, start=1)
            ]

    store = MixedStore()
    writer = AcceptWriter(store, writers=1).start()
    session = validate_session(SessionRequest("+447700900999", "Hi"))
    try:
        assert isinstance(writer.insert(session), OptedOut)
        assert isinstance(writer.insert(command("O-1")), Inserted)
    finally:
        writer.stop()
    assert store.batches == [["AcceptSessionCommand"], ["AcceptCommand"]]
