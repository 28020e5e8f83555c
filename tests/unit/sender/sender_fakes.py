"""Fakes of the sender's ports (FakeClock, FakeMessagesApi, FakeLeaser, ...) for unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import SendCommand, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import TransientError
from notifier.sender.pacer import ClockReading, Lease
from notifier.sender.service import Accepted, Go, MessageState, NotSent

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def command(message_id: int, to: str = "+447700900123", **variables: str) -> SendCommand:
    return SendCommand(
        message_id=MessageId(message_id),
        to=to,
        template_id="order_confirmation",
        content_sid="HX" + "0" * 32,
        content_variables=variables or {"1": "ORD-1"},
        accepted_at=T0,
    )


class FakeClock:
    """Time that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeMessagesApi:
    """Answers each create with the next scripted error (if any), else a new SID."""

    errors: list[Exception] = field(default_factory=list)
    calls: list[tuple[SendCommand, str, float]] = field(default_factory=list)
    refused: int = 0  # calls whose go() said no
    clock: Callable[[], float] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, command: SendCommand, status_callback_url: str, go: Go) -> Accepted:
        # Asked first, outside the lock, as the Twilio client asks it before writing.
        if not go():
            with self.lock:
                self.refused += 1
            raise NotSent("given up before sending")
        with self.lock:
            at = self.clock() if self.clock else 0.0
            self.calls.append((command, status_callback_url, at))
            if self.errors:
                raise self.errors.pop(0)
            return Accepted(TwilioSid(f"SM{len(self.calls):032x}"), "queued")


@dataclass
class FakeStatuses:
    statuses: dict[int, MessageStatus] = field(default_factory=dict)
    default: MessageStatus | None = MessageStatus.QUEUED
    failures: int = 0
    # message id -> the keyword its recipient opted out with
    opted_out: dict[int, str] = field(default_factory=dict)
    checks: int = 0

    def state_of(self, message_id: MessageId) -> MessageState | None:
        self.checks += 1
        if self.failures:
            self.failures -= 1
            raise TransientError("PostgreSQL unavailable")
        status = self.statuses.get(message_id, self.default)
        if status is None:
            return None
        return MessageState(status, opted_out_by=self.opted_out.get(message_id))


@dataclass
class FakeSink:
    """Acknowledges every published event at once."""

    events: list[StatusChange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, change: StatusChange, on_acked: Callable[[], None]) -> None:
        with self.lock:
            self.events.append(change)
        on_acked()


@dataclass
class FakeLeaser:
    """A single-process GCRA timeline on `clock`, like the PostgreSQL one."""

    clock: Callable[[], float]
    spacing: float
    next_slot: float = 0.0
    failures: int = 0
    # Real seconds each lease takes, like a database round trip.
    latency: float = 0.0
    # Fake seconds each lease takes (advances a FakeClock before reading it).
    stall: float = 0.0
    # Fake seconds after the clock reading, before the answer is received.
    stall_after: float = 0.0
    # How far the "database" clock is ahead of `clock`.
    clock_offset: float = 0.0
    leases: list[int] = field(default_factory=list)
    clock_reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lease(self, count: int, lead: float = 0.0) -> Lease:
        sent_at = self.clock()
        # Half the round trip before the clock is read, half after, like a network.
        threading.Event().wait(self.latency / 2)
        read_at, first_at = self._lease(count, lead)
        threading.Event().wait(self.latency / 2)
        return Lease(read_at, first_at, sent_at, self.clock())

    def read_clock(self) -> ClockReading:
        sent_at = self.clock()
        threading.Event().wait(self.latency / 2)
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise TransientError("PostgreSQL unavailable")
            self.clock_reads += 1
            read_at = self.clock() + self.clock_offset
        threading.Event().wait(self.latency / 2)
        return ClockReading(read_at, sent_at, self.clock())

    def _lease(self, count: int, lead: float) -> tuple[float, float]:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise TransientError("PostgreSQL unavailable")
            if self.stall and isinstance(self.clock, FakeClock):
                self.clock.advance(self.stall)
            now = self.clock()
            first = max(self.next_slot, now + lead)
            self.next_slot = first + count * self.spacing
            self.leases.append(count)
            if self.stall_after and isinstance(self.clock, FakeClock):
                self.clock.advance(self.stall_after)
            return now + self.clock_offset, first + self.clock_offset
