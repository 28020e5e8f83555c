"""SIGTERM to one process under load: it stops taking work, finishes or hands back what it
holds, commits, and exits 0 within its grace period (10 s here), losing nothing."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from confluent_kafka import Producer

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import Event, InboundMessage, Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.migrate import apply_migrations
from notifier.common.payloads import (
    decode_event,
    decode_send_command,
    encode_inbound_message,
    encode_status_change,
)
from notifier.common.pb import whatsapp_pb2_grpc
from notifier.twilio_emulator.webhook_client import SignedPoster
from tests.e2e.shutdown_support import (
    GRACE_SECONDS,
    NO_ANSWER,
    Record,
    callback_load,
    committed_offsets,
    health_refused,
    held,
    insert_messages,
    locked,
    new_number,
    post_status,
    read_topic,
    send_load,
    send_request,
    sigterm,
    terminate,
    waiting_on_lock,
)
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database
from tests.fixtures.stack import WHATSAPP_FROM, Stack, StackOptions, run_stack
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.e2e

OK, UNAVAILABLE, CANCELLED = (
    grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED
)  # fmt: skip

GRACE_ENV = {
    f"{name}_GRACE_SECONDS": str(GRACE_SECONDS)
    for name in ("GRPC", "SENDER", "RECORDER", "WEBHOOK")
}


@pytest.fixture(scope="module")
def stack(pg_server_url: str, kafka_bootstrap: str) -> Iterator[Stack]:
    """A stack of this module's own (any free port), every grace period set to 10 s."""
    with created_database(pg_server_url) as url:
        apply_migrations(url, MIGRATIONS_DIR)
        yield from run_stack(url, kafka_bootstrap, StackOptions(extra_env=GRACE_ENV))


def test_the_gateway_finishes_calls_in_flight_and_refuses_new_ones(stack: Stack) -> None:
    with held(stack, "gateway"):
        with send_load(stack.grpc_target, threads=8) as load:
            wait_until(lambda: len(load.results()) >= 40, timeout=30, message="40 calls answered")
            # Hold every call in flight: an accept waits for this lock (taken once the
            # accepts running now are done), so once all 8 threads are in a call, all wait.
            with locked(stack, "outbox"):
                wait_until(
                    lambda: load.in_flight() == 8 and waiting_on_lock(stack, "notifier-gateway"),
                    timeout=10,
                    message="8 calls waiting on the database",
                )
                sigterm_at = time.monotonic()
                exited = sigterm(stack, "gateway")
                wait_until(lambda: health_refused(stack.grpc_target), timeout=GRACE_SECONDS,
                           message="the gateway to refuse new calls")  # fmt: skip
                refusing_at = time.monotonic()
            wait_until(lambda: load.each_thread_started_after(refusing_at), timeout=GRACE_SECONDS,
                       message="a refused call on every thread")  # fmt: skip
        code, seconds = exited()
    calls = load.results()

    held_calls = [c for c in calls if c.started < sigterm_at and c.ended > refusing_at]
    print(
        f"gateway exited {code} {seconds:.2f}s after SIGTERM; "
        f"{len(held_calls)} calls held in flight finished: {Counter(c.code for c in calls)}"
    )
    assert (code, seconds < GRACE_SECONDS) == (0, True), seconds
    # Calls the gateway held when SIGTERM came were finished, not dropped.
    assert held_calls and all(c.code == OK for c in held_calls), held_calls
    # Once it refused health checks it refused every call; a call that reached it at the
    # instant it stopped (accepted by the transport, never started) is CANCELLED by grpc.
    refused = [c for c in calls if c.started >= refusing_at]
    assert refused and all(c.code == UNAVAILABLE for c in refused)
    assert {c.code for c in calls} <= {OK, UNAVAILABLE, CANCELLED}
    assert all(c.ended > sigterm_at for c in calls if c.code == CANCELLED)

    # Accepted means a committed row with its outbox entry; refused means no row at all.
    rows = dict(stack.query(
        """SELECT m.idempotency_key, m.id FROM messages m
             JOIN outbox o ON o.message_id = m.id
             JOIN message_status_history h ON h.message_id = m.id AND h.status = 'QUEUED'
            WHERE m.idempotency_key = ANY(%s)""",
        [c.key for c in calls],
    ))  # fmt: skip
    assert rows == {c.key: c.message_id for c in calls if c.code == OK}

    # The restarted gateway (and its relay) get every accepted message to the sender.
    accepted = list(rows.values())
    wait_until(
        lambda: (
            not stack.query(
                """SELECT m.id FROM messages m JOIN outbox o ON o.message_id = m.id
                WHERE m.id = ANY(%s) AND (m.status = 'QUEUED' OR o.published_at IS NULL)""",
                accepted,
            )
        ),
        timeout=30,
        message="every accepted message published and sent",
    )


def test_the_sender_finishes_twilio_calls_in_flight_and_commits_what_it_did(
    stack: Stack,
) -> None:
    stack.emulator.configure(latency_ms=200)  # calls are in flight when SIGTERM comes
    try:
        with held(stack, "sender"):
            ids = accept(stack, 200)
            wait_until(lambda: len(at_twilio(stack, ids)) >= 20, timeout=30,
                       message="20 messages at Twilio")  # fmt: skip
            code, seconds = terminate(stack, "sender")
            sent_by_first = at_twilio(stack, ids)
            committed = committed_offsets(
                stack.bootstrap_servers,
                stack.groups["sender"],
                stack.topics["KAFKA_TOPIC_OUTBOUND"],
            )
            records = read_topic(
                stack.bootstrap_servers, stack.topics["KAFKA_TOPIC_OUTBOUND"],
                lambda value: decode_send_command(value).message_id,
                until=lambda got: set(ids) <= {r.value for r in got},
            )  # fmt: skip
            # Every call Twilio took was reported (SENDING from the sender) before the exit.
            wait_until(lambda: reported_by_sender(stack, sent_by_first) == sent_by_first,
                       timeout=30, message="SENDING recorded for every call made")  # fmt: skip
        wait_until(lambda: not queued(stack, ids), timeout=60,
                   message="every message sent after the restart")  # fmt: skip
    finally:
        stack.emulator.configure(latency_ms=0)

    print(f"sender exited {code} {seconds:.2f}s after SIGTERM; "
          f"{len(sent_by_first)} of {len(ids)} sent before it")  # fmt: skip
    assert (code, seconds < GRACE_SECONDS) == (0, True), seconds
    assert 0 < len(sent_by_first) < len(ids), "SIGTERM came before or after the backlog"
    # Each partition's committed position is exactly past the commands finished in order:
    # a restart neither skips an unsent command nor re-reads a finished prefix.
    mine = [r for r in records if r.value in set(ids)]
    assert len(mine) == len(ids), "a command was published twice"
    assert committed == expected_positions(mine, sent_by_first, committed)
    sends = Counter(m.mid for m in stack.emulator.messages() if m.mid in {str(i) for i in ids})
    assert set(sends.values()) == {1} and len(sends) == len(ids)
    assert stack.emulator.stats().duplicates == 0


def test_the_recorder_applies_the_batch_it_holds_and_commits_only_what_it_applied(
    stack: Stack,
) -> None:
    # Earlier tests' events all applied: the batch the recorder holds is of this test.
    wait_until(lambda: not stack.query(
        """SELECT m.id FROM messages m LEFT JOIN message_status_history h ON h.message_id = m.id
            GROUP BY m.id HAVING m.status <> 'READ' OR count(h.status) < 5"""
    ), timeout=30, message="the recorder idle")  # fmt: skip
    ids = insert_messages(stack, 2000)
    events = lifecycle_events(ids)
    with held(stack, "recorder"):
        with locked(stack, "message_status_history"):
            produce(stack, events)
            wait_until(lambda: waiting_on_lock(stack, "notifier-recorder"), timeout=30,
                       message="the recorder to hold a batch")  # fmt: skip
            exited = sigterm(stack, "recorder")
        code, seconds = exited()
        committed = committed_offsets(
            stack.bootstrap_servers, stack.groups["recorder"], stack.topics["KAFKA_TOPIC_EVENTS"]
        )
        wanted = {event_key(e) for e in events}
        records = read_topic(
            stack.bootstrap_servers, stack.topics["KAFKA_TOPIC_EVENTS"], decode_event,
            until=lambda got: wanted <= {event_key(r.value) for r in got},
        )  # fmt: skip
        applied_by_first = applied(stack, ids, [e for e in events if isinstance(e, InboundMessage)])
    wait_until(lambda: len(applied(stack, ids, events)) == len(events), timeout=60,
               message="every event applied after the restart")  # fmt: skip

    print(f"recorder exited {code} {seconds:.2f}s after SIGTERM; "
          f"{len(applied_by_first)} of {len(events)} events applied before it")  # fmt: skip
    assert (code, seconds < GRACE_SECONDS) == (0, True), seconds
    mine = [r for r in records if event_key(r.value) in wanted]
    below = [r for r in mine if r.offset < committed.get(r.partition, -1)]
    assert below, "the batch held at SIGTERM was not committed"
    assert {event_key(r.value) for r in below} <= applied_by_first
    assert len(applied_by_first) < len(events), "SIGTERM came after the backlog"


def test_the_webhook_answers_200_only_for_published_callbacks(stack: Stack) -> None:
    ids = insert_messages(stack, 400)
    with held(stack, "webhook"), callback_load(stack, ids, threads=8) as load:
        wait_until(lambda: sum(p.status == 200 for p in load.results()) >= 50, timeout=30,
                   message="50 callbacks answered 200")  # fmt: skip
        code, seconds = terminate(stack, "webhook")
        wait_until(load.finished, timeout=10, message="every thread refused")
    posts = load.results()

    print(f"webhook exited {code} {seconds:.2f}s after SIGTERM; "
          f"{Counter(p.status for p in posts)}")  # fmt: skip
    assert (code, seconds < GRACE_SECONDS) == (0, True), seconds
    assert {p.status for p in posts} <= {200, 503, NO_ANSWER}
    ok = {p.message_id for p in posts if p.status == 200}
    published = read_topic(
        stack.bootstrap_servers, stack.topics["KAFKA_TOPIC_EVENTS"], decode_event,
        until=lambda got: ok <= sent_callbacks(got),
    )  # fmt: skip
    assert ok <= sent_callbacks(published)
    # Twilio retries what got no 200; the restarted webhook takes it.
    poster = SignedPoster(timeout=10)
    try:
        for mid in sorted(set(ids) - ok):
            assert post_status(stack, poster, mid, "SM" + secrets.token_hex(16), "sent") == 200
    finally:
        poster.close()
    wait_until(lambda: not stack.query("SELECT id FROM messages WHERE id = ANY(%s) AND "
                                       "status <> 'SENT'", ids), timeout=30,
               message="every callback applied")  # fmt: skip


def accept(stack: Stack, count: int) -> list[int]:
    """`count` messages accepted through the gateway, each to a number of its own."""
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        with ThreadPoolExecutor(8) as pool:
            replies = pool.map(
                lambda i: stub.SendTemplateMessage(send_request(f"sender-{i}-{new_number()}"),
                                                   timeout=30),
                range(count),
            )  # fmt: skip
            return [reply.message_id for reply in replies]


def at_twilio(stack: Stack, ids: list[int]) -> set[int]:
    wanted = {str(i) for i in ids}
    return {int(m.mid) for m in stack.emulator.messages() if m.mid in wanted}


def reported_by_sender(stack: Stack, ids: set[int]) -> set[int]:
    rows = stack.query(
        "SELECT message_id FROM message_status_history"
        " WHERE message_id = ANY(%s) AND status = 'SENDING' AND source = 'sender'",
        sorted(ids),
    )
    return {int(str(row[0])) for row in rows}


def queued(stack: Stack, ids: list[int]) -> list[tuple[object, ...]]:
    return stack.query("SELECT id FROM messages WHERE id = ANY(%s) AND status = 'QUEUED'", ids)


def expected_positions(
    records: list[Record[int]], done: set[int], committed: dict[int, int]
) -> dict[int, int]:
    """Per partition: the offset of its first command not done, or one past its last."""
    expected = dict(committed)  # partitions without this test's commands stay as they are
    for partition in {r.partition for r in records}:
        mine = sorted((r.offset, r.value) for r in records if r.partition == partition)
        pending = [offset for offset, message_id in mine if message_id not in done]
        expected[partition] = pending[0] if pending else mine[-1][0] + 1
    return expected


def lifecycle_events(ids: list[int]) -> list[Event]:
    """Each message's whole life (SENDING with a SID, SENT, DELIVERED, READ), and replies."""
    start = datetime.now(UTC)
    events: list[Event] = []
    for message_id in ids:
        sid = TwilioSid("SM" + secrets.token_hex(16))
        for step, (status, source) in enumerate([
            (MessageStatus.SENDING, Source.SENDER),
            (MessageStatus.SENT, Source.TWILIO),
            (MessageStatus.DELIVERED, Source.TWILIO),
            (MessageStatus.READ, Source.TWILIO),
        ]):  # fmt: skip
            at = start + timedelta(seconds=step)
            events.append(StatusChange(MessageId(message_id), sid, status, at, source))
    for _ in range(100):
        events.append(InboundMessage(TwilioSid("SM" + secrets.token_hex(16)), new_number(),
                                     WHATSAPP_FROM, start, body="Is it on its way?"))  # fmt: skip
    return events


def produce(stack: Stack, events: list[Event]) -> None:
    """Onto the events topic as the sender and the webhook publish them."""
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
    for event in events:
        if isinstance(event, StatusChange):
            key, value = str(event.message_id), encode_status_change(event)
        else:
            key, value = event.from_number, encode_inbound_message(event)
        producer.produce(stack.topics["KAFKA_TOPIC_EVENTS"], value, key.encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def event_key(event: Event) -> tuple[object, ...]:
    if isinstance(event, StatusChange):
        return ("status", event.message_id, event.status.value)
    return ("inbound", event.twilio_sid)


def applied(stack: Stack, ids: list[int], events: list[Event]) -> set[tuple[object, ...]]:
    """The keys (`event_key`) of the events in the database: history rows, inbound rows."""
    history = stack.query(
        "SELECT message_id, status FROM message_status_history WHERE message_id = ANY(%s)", ids
    )
    sids = [e.twilio_sid for e in events if isinstance(e, InboundMessage)]
    inbound = stack.query("SELECT twilio_sid FROM inbound_messages WHERE twilio_sid = ANY(%s)",
                          sids)  # fmt: skip
    return {("status", mid, status) for mid, status in history} | {
        ("inbound", sid) for (sid,) in inbound
    }


def sent_callbacks(records: list[Record[Event]]) -> set[int]:
    """Message ids of Twilio's `sent` callbacks on the events topic."""
    return {
        int(r.value.message_id)
        for r in records
        if isinstance(r.value, StatusChange)
        and r.value.source is Source.TWILIO
        and r.value.status is MessageStatus.SENT
        and r.value.message_id is not None
    }


# PostgreSQL hangs (a lock held past the grace period): the process still exits within its
# grace, cancelling the statements that block it (GraceWatchdog / Database.abort); what they
# held is rolled back and redelivered, never lost. They cost a grace period each, so they
# run last in the module.


def test_the_gateway_exits_within_its_grace_while_the_database_hangs(stack: Stack) -> None:
    with (
        held(stack, "gateway"),
        send_load(stack.grpc_target, threads=4) as load,
        locked(stack, "outbox"),
    ):
        wait_until(lambda: load.in_flight() == 4 and waiting_on_lock(stack, "notifier-gateway"),
                   timeout=30, message="4 calls waiting on the database")  # fmt: skip
        sigterm(stack, "gateway")(GRACE_SECONDS + 3)


def test_the_recorder_exits_within_its_grace_while_the_database_hangs(stack: Stack) -> None:
    ids = insert_messages(stack, 10)
    with held(stack, "recorder"), locked(stack, "message_status_history"):
        produce(stack, lifecycle_events(ids))
        wait_until(lambda: waiting_on_lock(stack, "notifier-recorder"), timeout=30,
                   message="the recorder to hold a batch")  # fmt: skip
        sigterm(stack, "recorder")(GRACE_SECONDS + 3)
