"""The chaos run: the real processes under load while each part fails in turn, then the count.

`run_chaos(config)` starts a PostgreSQL and a broker of its own and the processes as
`make run` runs them (gateway, sender, webhook, recorder, under the dev stack's
Supervisor, with the Twilio emulator posting signed status callbacks), sends
`config.messages` through gRPC while the faults happen one at a time, waits for the
pipeline to settle and counts (`tally`). Everything it started is stopped at the end,
also when it fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from notifier.twilio_emulator import CallbackRule
from tests.chaos import faults as fault_kinds
from tests.chaos.backends import Backends, private_backends
from tests.chaos.faults import FaultRecord, inject
from tests.chaos.load import Accept, SendLoad, accepted_by_key, phone_number
from tests.chaos.report import summary
from tests.chaos.tally import Observed, Tally, tally
from tests.fixtures.stack import Stack, StackOptions, run_stack
from tests.fixtures.waiting import random_suffix, wait_until

# The status each kind of message ends at once every callback got through.
END_STATUS = {"normal": "READ", "undelivered": "UNDELIVERED", "failed": "FAILED"}


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    messages: int = 10_000
    rate: float = 100.0  # messages offered per second
    client_threads: int = 8
    faults: tuple[str, ...] = fault_kinds.FAULTS
    # At least this long between one fault's recovery and the next fault.
    pause_seconds: float = 3.0
    # How long the pipeline gets to settle after the last accept.
    settle_seconds: float = 300.0
    # Every `fail_every`-th message is told to end UNDELIVERED, another one FAILED.
    fail_every: int = 50
    sender_mps: int = 200
    sender_concurrency: int = 64
    # Twilio's API answers in a few hundred milliseconds: calls are in flight when the
    # sender is killed, and those Twilio took are the duplicates the run may see.
    emulator_latency_ms: int = 200
    callback_speed: float = 2.0  # sent after 0.1 s, delivered 0.5 s, read 1.5 s
    reconcile_interval_seconds: float = 1.0
    reconcile_after_seconds: float = 5.0
    # Topics the processes create get this many partitions; Tansu auto-creates 4, so a
    # topic that comes back with 4 after the broker restart was not ours.
    partitions: int = 6
    log_dir: Path = field(default_factory=lambda: Path(".chaos"))


@dataclass(frozen=True, slots=True)
class ChaosResult:
    config: ChaosConfig
    tally: Tally
    records: list[FaultRecord]
    load_started: float  # monotonic
    load_seconds: float
    settle_seconds: float | None  # None: not settled within config.settle_seconds

    @property
    def passed(self) -> bool:
        return not self.tally.problems()

    def summary(self) -> str:
        return summary(self)


def expected_kind(index: int, fail_every: int) -> str:
    if fail_every and index % fail_every == fail_every - 1:
        return "undelivered"
    if fail_every and index % fail_every == fail_every // 2:
        return "failed"
    return "normal"


def run_chaos(config: ChaosConfig) -> ChaosResult:
    config.log_dir.mkdir(parents=True, exist_ok=True)
    for name in (*fault_kinds.PROCESSES, "tansu"):  # the logs of this run only
        (config.log_dir / f"{name}.log").unlink(missing_ok=True)
    with private_backends(config.log_dir) as backends, _stack(backends, config) as stack:
        _tell_emulator_what_fails(stack, config)
        prefix = random_suffix()
        marks = _marks(config)
        with SendLoad(
            stack.grpc_target,
            config.messages,
            config.rate,
            config.client_threads,
            prefix,
            released=marks[0] + _ahead(config),
        ) as load:
            started = time.monotonic()
            records = _strike_in_turn(stack, backends, load, marks, config)
            wait_until(
                load.finished,
                timeout=config.messages / config.rate + 180,
                message="every message answered",
            )
        accepts = load.accepts()
        load_ended = max((a.ended for a in accepts), default=time.monotonic())
        settled = _settle(stack, accepts, config)
        settle_seconds = settled - load_ended if settled is not None else None
        observed = _observe(stack, accepts, prefix, config)
    return ChaosResult(
        config, tally(observed, records), records, started, load_ended - started, settle_seconds
    )


@contextmanager
def _stack(backends: Backends, config: ChaosConfig) -> Iterator[Stack]:
    options = StackOptions(
        sender_mps=config.sender_mps,
        emulator_mps=config.sender_mps,
        emulator_latency_ms=config.emulator_latency_ms,
        callback_speed=config.callback_speed,
        extra_env={"KAFKA_TOPIC_PARTITIONS": str(config.partitions)},
        process_env={
            "sender": {
                "SENDER_CONCURRENCY": str(config.sender_concurrency),
                "SENDER_RECONCILE_INTERVAL_SECONDS": str(config.reconcile_interval_seconds),
                "SENDER_RECONCILE_AFTER_SECONDS": str(config.reconcile_after_seconds),
                "SENDER_RECONCILE_FETCHES_PER_SECOND": "100",
            },
            "webhook": {"WEB_CONCURRENCY": "2"},  # as `make run`
        },
        log_dir=config.log_dir,
    )
    yield from run_stack(backends.database_url, backends.broker.bootstrap_servers, options)


def _tell_emulator_what_fails(stack: Stack, config: ChaosConfig) -> None:
    rules = {
        phone_number(i): CallbackRule.from_json({"mode": kind}).to_json()
        for i in range(config.messages)
        if (kind := expected_kind(i, config.fail_every)) != "normal"
    }
    stack.emulator.configure(callback_rules=rules)


def _marks(config: ChaosConfig) -> list[int]:
    """Fault k comes once marks[k-1] messages are accepted; the last mark is the end."""
    count = len(config.faults) + 1
    return [config.messages * k // count for k in range(1, count + 1)]


def _ahead(config: ChaosConfig) -> int:
    """How far past a mark the load may run while its fault waits: a second's worth."""
    return max(1, int(config.rate))


def _strike_in_turn(
    stack: Stack, backends: Backends, load: SendLoad, marks: list[int], config: ChaosConfig
) -> list[FaultRecord]:
    """Fault k comes once k/(n+1) of the messages are accepted and the pause after the
    one before is over. The load is held a second's worth of messages past that mark
    until the fault comes, and released up to the next mark as it comes: traffic flows
    before, during and after every fault, however long each takes to recover."""
    records: list[FaultRecord] = []
    quiet_until = time.monotonic() + config.pause_seconds
    for k, name in enumerate(config.faults, start=1):
        wanted = marks[k - 1]
        wait_until(
            _due(load, wanted, quiet_until),
            timeout=config.messages / config.rate + 120,
            interval=0.05,
            message=f"{wanted} messages accepted before the {name} fault",
        )
        load.release(marks[k] + _ahead(config))
        record = inject(fault_kinds.build(name, stack, backends.postgres, backends.broker))
        records.append(record)
        print(f"chaos: {name}: {record.note} ({record.recovery_seconds:.1f}s)", flush=True)
        quiet_until = record.recovered + config.pause_seconds
    load.release(config.messages)
    return records


def _due(load: SendLoad, wanted: int, quiet_until: float) -> Callable[[], bool]:
    return lambda: load.accepted_count() >= wanted and time.monotonic() >= quiet_until


def _settle(stack: Stack, accepts: list[Accept], config: ChaosConfig) -> float | None:
    """When every accepted message reached the status its kind ends at, or None. Says
    every 10 s what it is waiting for."""
    wanted = Counter(
        END_STATUS[expected_kind(a.index, config.fail_every)]
        for a in accepts
        if a.message_id is not None
    )
    next_report = time.monotonic() + 10

    def settled() -> bool:
        nonlocal next_report
        have = {
            str(status): int(str(count))
            for status, count in stack.query(
                "SELECT status, count(*) FROM messages GROUP BY status"
            )
        }
        if time.monotonic() >= next_report:
            next_report += 10
            callbacks = stack.emulator.stats().callbacks
            print(f"chaos: settling: {dict(sorted(have.items()))}; callbacks pending "
                  f"{callbacks.pending}, failed {callbacks.failed}", flush=True)  # fmt: skip
            for line in _stragglers(stack):
                print(f"chaos:   {line}", flush=True)
        return all(have.get(status, 0) >= n for status, n in wanted.items())

    try:
        wait_until(
            settled,
            timeout=config.settle_seconds,
            interval=0.5,
            message="every message at its final status",
        )
    except AssertionError:
        return None
    return time.monotonic()


def _stragglers(stack: Stack, shown: int = 5) -> list[str]:
    """What the database and the emulator know of a few messages not final yet."""
    rows = stack.query(
        """SELECT m.id, m.status, m.twilio_sid,
                  string_agg(h.status || '@' || to_char(h.recorded_at, 'HH24:MI:SS.MS')
                             || '/' || h.source, ' ' ORDER BY h.recorded_at)
             FROM messages m JOIN message_status_history h ON h.message_id = m.id
            WHERE m.status NOT IN ('READ', 'FAILED', 'UNDELIVERED')
            GROUP BY m.id ORDER BY m.id LIMIT %s""",
        shown,
    )
    callbacks: dict[str, list[str]] = {}
    for record in stack.emulator.callbacks():
        callbacks.setdefault(record.sid, []).append(
            f"{record.status}:{record.outcome}/{record.http_status}x{record.attempts}"
        )
    return [
        f"{mid} {status}: {history}; callbacks {callbacks.get(str(sid), 'not kept')}"
        for mid, status, sid, history in rows
    ]


def _observe(stack: Stack, accepts: list[Accept], prefix: str, config: ChaosConfig) -> Observed:
    rows = {
        int(str(mid)): (str(key), str(status))
        for mid, key, status in stack.query(
            "SELECT id, idempotency_key, status FROM messages WHERE idempotency_key LIKE %s",
            f"chaos-{prefix}-%",
        )
    }
    left_queued_at = {
        int(str(mid)): float(str(at))
        for mid, at in stack.query(
            """SELECT message_id, extract(epoch FROM min(recorded_at))
                 FROM message_status_history WHERE status <> 'QUEUED' GROUP BY message_id"""
        )
    }
    stats = stack.emulator.stats()
    sends: dict[int, list[float]] = {}
    for message in stack.emulator.messages():
        if message.mid is not None and message.mid.isdigit():
            sends.setdefault(int(message.mid), []).append(message.arrived_at)
    expected = {
        mid: expected_kind(int(key.rsplit("-", 1)[1]), config.fail_every)
        for mid, (key, _status) in rows.items()
    }
    return Observed(
        accepted=accepted_by_key(accepts),
        not_accepted={a.key: a.code.name for a in accepts if a.message_id is None},
        retried_accepts=sum(1 for a in accepts if a.message_id is not None and a.attempts > 1),
        duplicate_answers=sum(1 for a in accepts if a.duplicate),
        rows=rows,
        left_queued_at=left_queued_at,
        sends=sends,
        expected=expected,
        throttled=stats.throttled,
        retried_spans=[(a.started, a.ended) for a in accepts if a.attempts > 1],
        callbacks_failed=stats.callbacks.failed,
    )
