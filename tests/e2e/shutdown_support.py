"""Load, signals and read-backs for the graceful-shutdown tests: one process stopped at a time.

`held` keeps the Supervisor from restarting the process under test until the block ends;
`terminate` sends it SIGTERM and times its exit. The load generators record every call with
its outcome, so a test can say what was accepted, what was refused, and when.
"""

from __future__ import annotations

import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import grpc
import psycopg2
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg2 import sql

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.twilio_emulator.webhook_client import PostFailed, SignedPoster
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import random_suffix, wait_until

# Every process of the module's stack gets this grace (GRPC_/SENDER_/RECORDER_/WEBHOOK_).
GRACE_SECONDS = 10
NO_ANSWER = 0  # a webhook post that got no HTTP answer (refused or reset)
T = TypeVar("T")


class Exit(NamedTuple):
    code: int
    seconds: float


@contextmanager
def held(stack: Stack, name: str) -> Iterator[None]:
    """`name` is not restarted inside the block; after it, it is, and is ready again."""
    stack.supervisor.hold(name)
    try:
        yield
    finally:
        stack.supervisor.release(name)
    stack.wait_ready(name)


def sigterm(stack: Stack, name: str) -> Callable[..., Exit]:
    """Sends SIGTERM to `name` alone, now; the function returned waits for its exit (at
    most `timeout` seconds after the signal) and says how long after the signal it came."""
    exits: list[Exit] = []
    sent_at = time.monotonic()
    stack.supervisor.send_signal(name, signal.SIGTERM)

    def wait_for_exit() -> None:
        code = stack.supervisor.wait_exit(name, timeout=GRACE_SECONDS + 20)
        exits.append(Exit(code, time.monotonic() - sent_at))

    waiter = threading.Thread(target=wait_for_exit, name=f"wait-{name}", daemon=True)
    waiter.start()

    def result(timeout: float = GRACE_SECONDS + 20) -> Exit:
        waiter.join(max(0.0, sent_at + timeout - time.monotonic()))
        assert exits, f"{name} still running {timeout:g}s after SIGTERM"
        return exits[0]

    return result


def terminate(stack: Stack, name: str) -> Exit:
    """SIGTERM to `name` alone; returns its exit code and how long it took to exit."""
    return sigterm(stack, name)()


@contextmanager
def locked(stack: Stack, table: str) -> Iterator[float]:
    """Holds a SHARE lock on `table` (writes to it wait, reads do not) for the block;
    yields the moment it was taken."""
    conn = psycopg2.connect(stack.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(table)))
        yield time.monotonic()
    finally:
        conn.rollback()
        conn.close()


def waiting_on_lock(stack: Stack, application: str) -> bool:
    """True while a connection of `application` waits for a lock in the stack's database."""
    [(count,)] = stack.query(
        """SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = %s
              AND wait_event_type = 'Lock'""",
        application,
    )
    return bool(count)


def new_number() -> str:
    return "+4477" + "".join(secrets.choice("0123456789") for _ in range(9))


def send_request(key: str) -> whatsapp_pb2.SendTemplateMessageRequest:
    """A template message to a number of its own (the pair limit never delays it)."""
    return whatsapp_pb2.SendTemplateMessageRequest(
        phone_number=new_number(),
        template_id="order_confirmation",
        parameters={"order_id": f"ORD-{key}"},
        order_id=f"ORD-{key}",
        idempotency_key=key,
    )


@dataclass(frozen=True, slots=True)
class Call:
    key: str
    started: float
    ended: float
    code: grpc.StatusCode
    message_id: int | None


class Load(Generic[T]):
    """`threads` threads each running `step` back to back until stopped; every result kept.

    `step(thread_index)` returns what one call did; `started_at(result)` when it began
    (monotonic clock). A thread ends after a result for which `last(result)` is true.
    """

    def __init__(
        self,
        threads: int,
        step: Callable[[int], T],
        started_at: Callable[[T], float],
        close: Callable[[], None] = lambda: None,
        last: Callable[[T], bool] = lambda _result: False,
    ) -> None:
        self._step = step
        self._started_at = started_at
        self._close = close
        self._last = last
        self._lock = threading.Lock()
        self._results: list[T] = []
        self._current: dict[int, float] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    def __enter__(self) -> Load[T]:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._close()

    def results(self) -> list[T]:
        with self._lock:
            return list(self._results)

    def finished(self) -> bool:
        """True once every thread has ended (see `last`)."""
        return not any(thread.is_alive() for thread in self._threads)

    def in_flight(self) -> int:
        """Threads busy in a call now."""
        with self._lock:
            return len(self._current)

    def each_thread_started_after(self, moment: float) -> bool:
        """True once every thread has finished a call it started after `moment`."""
        return len(self.results_started_after(moment)) >= len(self._threads)

    def results_started_after(self, moment: float) -> list[T]:
        return [r for r in self.results() if self._started_at(r) >= moment]

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._current[index] = time.monotonic()
            result = self._step(index)
            with self._lock:
                del self._current[index]
                self._results.append(result)
            if self._last(result):
                return


def send_load(target: str, threads: int) -> Load[Call]:
    """SendTemplateMessage calls, each with its own idempotency key."""
    channel = grpc.insecure_channel(target)
    stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
    prefix = random_suffix()
    counter = iter(range(1_000_000_000))
    counter_lock = threading.Lock()

    def step(_index: int) -> Call:
        with counter_lock:
            key = f"shutdown-{prefix}-{next(counter)}"
        started = time.monotonic()
        try:
            reply = stub.SendTemplateMessage(send_request(key), timeout=30)
        except grpc.RpcError as exc:
            return Call(key, started, time.monotonic(), exc.code(), None)
        return Call(key, started, time.monotonic(), grpc.StatusCode.OK, reply.message_id)

    return Load(threads, step, lambda call: call.started, close=channel.close)


def health_refused(target: str) -> bool:
    """True once the gateway's server refuses new calls (health itself is UNAVAILABLE)."""
    with grpc.insecure_channel(target) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError as exc:
            return bool(exc.code() == grpc.StatusCode.UNAVAILABLE)
    return False


@dataclass(frozen=True, slots=True)
class Post:
    message_id: int
    started: float
    status: int  # the HTTP status, or NO_ANSWER


def callback_load(stack: Stack, message_ids: list[int], threads: int) -> Load[Post]:
    """Signed `sent` status callbacks, as Twilio posts them, one per message id (cycling);
    a thread ends at its first post that gets no answer."""
    sids = {mid: "SM" + secrets.token_hex(16) for mid in message_ids}
    queue = iter(message_ids * 1000)
    queue_lock = threading.Lock()
    posters = [SignedPoster(timeout=10) for _ in range(threads)]

    def step(index: int) -> Post:
        with queue_lock:
            mid = next(queue)
        started = time.monotonic()
        try:
            status = post_status(stack, posters[index], mid, sids[mid], "sent")
        except PostFailed:
            status = NO_ANSWER
        return Post(mid, started, status)

    def close() -> None:
        for poster in posters:
            poster.close()

    return Load(
        threads, step, lambda post: post.started, close, last=lambda post: post.status == NO_ANSWER
    )


def post_status(stack: Stack, poster: SignedPoster, mid: int, sid: str, status: str) -> int:
    form = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": stack.emulator.config.account_sid,
        "To": f"whatsapp:{new_number()}",
    }
    url = f"{stack.webhook_url}/webhook/status?mid={mid}"
    return poster.post(url, form, stack.emulator.config.auth_token).status


def insert_messages(stack: Stack, count: int) -> list[int]:
    """QUEUED messages written straight to the table, with no outbox row: no sender sees
    them, so only the events a test produces move them."""
    rows = stack.query(
        """INSERT INTO messages (phone_number, template_id, content_sid)
           SELECT '+4477' || lpad((floor(random() * 1e9))::bigint::text, 9, '0'),
                  name, content_sid
             FROM templates, generate_series(1, %s)
            WHERE name = 'order_confirmation'
           RETURNING id""",
        count,
    )
    return sorted(int(str(row[0])) for row in rows)


@dataclass(frozen=True, slots=True)
class Record(Generic[T]):
    partition: int
    offset: int
    value: T


def read_topic(
    bootstrap: str,
    topic: str,
    decode: Callable[[bytes], T],
    until: Callable[[list[Record[T]]], bool],
    timeout: float = 30,
) -> list[Record[T]]:
    """Reads `topic` from its beginning, outside any group, until `until(records)`."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"shutdown-reader-{random_suffix()}",
        "enable.auto.commit": False,
    })  # fmt: skip
    records: list[Record[T]] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

        def caught_up() -> bool:
            for message in consumer.consume(1000, 0.1):
                if message.error() is None:
                    value = decode(message.value() or b"")
                    records.append(Record(message.partition(), message.offset(), value))
            return until(records)

        wait_until(caught_up, timeout=timeout, message=f"the records wanted from {topic}")
    finally:
        consumer.close()
    return records


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed position per partition (negative: nothing committed); read
    without joining the group."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False
    })  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()
