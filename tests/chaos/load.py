"""The chaos run's clients: paced SendTemplateMessage calls, each retried with its own key.

Messages go out at `rate` per second, each client thread taking the next one when it is
due, up to what has been released (`release`): the fault schedule keeps the load from
running ahead of it, so traffic flows before, during and after every fault. A call that
fails with UNAVAILABLE or DEADLINE_EXCEEDED (the gateway killed, PostgreSQL restarting) is
made again with the same idempotency key, so an accept whose answer was lost comes back
as the same id (`duplicate: true`) and is never counted twice. Every outcome is kept: the
id accepted, or the code given up on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from tests.e2e.shutdown_support import Load

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
CALL_TIMEOUT_SECONDS = 10.0
_FIRST_BACKOFF, _MAX_BACKOFF = 0.05, 1.0


def phone_number(index: int) -> str:
    """The recipient of message `index`: a number of its own (the pair limit never delays
    it), in the +4477 range the other end-to-end tests use."""
    return f"+4477{index:09d}"


@dataclass(frozen=True, slots=True)
class Accept:
    """What the client got for message `index` in the end."""

    index: int
    key: str
    started: float  # monotonic: the first call
    ended: float  # monotonic: the last answer
    attempts: int
    code: grpc.StatusCode
    message_id: int | None
    duplicate: bool  # the last answer said the key had been accepted before


_DONE = Accept(-1, "", 0.0, 0.0, 0, grpc.StatusCode.OK, None, False)


class SendLoad:
    """`total` messages at `rate` per second over `threads` client threads.

    Use as a context manager; `accepts()` is what has been answered so far. Only the first
    `released` go until `release` allows more. A message is given up on after
    `give_up_seconds` of retrying (reported, never silently dropped).
    """

    def __init__(
        self,
        target: str,
        total: int,
        rate: float,
        threads: int,
        key_prefix: str,
        released: int | None = None,
        give_up_seconds: float = 120.0,
    ) -> None:
        self._total = total
        self._rate = rate
        self._prefix = key_prefix
        self._give_up = give_up_seconds
        self._channel = grpc.insecure_channel(target)
        self._stub = whatsapp_pb2_grpc.WhatsAppServiceStub(self._channel)
        self._next = 0
        self._released = total if released is None else min(released, total)
        self._next_due = 0.0
        self._cond = threading.Condition()
        self._abort = threading.Event()
        self._load = Load(
            threads,
            self._step,
            lambda accept: accept.started,
            close=self._channel.close,
            last=lambda accept: accept is _DONE,
        )

    def __enter__(self) -> SendLoad:
        self._load.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._abort.set()  # cut pacing waits and retries short
        with self._cond:
            self._cond.notify_all()
        self._load.__exit__(*exc)

    def release(self, count: int) -> None:
        """Messages with an index below `count` may go (all of them unless called)."""
        with self._cond:
            self._released = min(count, self._total)
            self._cond.notify_all()

    def accepts(self) -> list[Accept]:
        return [a for a in self._load.results() if a is not _DONE]

    def accepted_count(self) -> int:
        return sum(1 for a in self.accepts() if a.message_id is not None)

    def finished(self) -> bool:
        return self._load.finished()

    def _step(self, _thread: int) -> Accept:
        with self._cond:
            index, self._next = self._next, self._next + 1
            if index >= self._total:
                return _DONE
            while index >= self._released and not self._abort.is_set():
                self._cond.wait()
            # The pace restarts from now after a hold, rather than catching up in a burst.
            due = max(self._next_due, time.monotonic())
            self._next_due = due + 1 / self._rate
        self._abort.wait(max(0.0, due - time.monotonic()))
        return self._send(index)

    def _send(self, index: int) -> Accept:
        key = f"chaos-{self._prefix}-{index}"
        order = f"ORD-{self._prefix}-{index}"
        request = whatsapp_pb2.SendTemplateMessageRequest(
            phone_number=phone_number(index),
            template_id="order_confirmation",
            parameters={"order_id": order},
            order_id=order,
            customer_id=f"CUST-{index % 97}",
            idempotency_key=key,
        )
        started = time.monotonic()
        deadline = started + self._give_up
        backoff, attempts = _FIRST_BACKOFF, 0
        while True:
            attempts += 1
            try:
                reply = self._stub.SendTemplateMessage(request, timeout=CALL_TIMEOUT_SECONDS)
            except grpc.RpcError as exc:
                code = exc.code()
                if code in RETRYABLE and time.monotonic() < deadline and not self._abort.is_set():
                    self._abort.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
                return Accept(index, key, started, time.monotonic(), attempts, code, None, False)
            return Accept(
                index,
                key,
                started,
                time.monotonic(),
                attempts,
                grpc.StatusCode.OK,
                int(reply.message_id),
                bool(reply.duplicate),
            )


def accepted_by_key(accepts: list[Accept]) -> dict[str, int]:
    return {a.key: a.message_id for a in accepts if a.message_id is not None}
