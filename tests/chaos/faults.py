"""The faults of the chaos run, one at a time: each is done, then waited out.

A process is killed with SIGKILL (no goodbye: no flush, no commit, no offset) and the
dev stack's Supervisor restarts it, as Kubernetes would; PostgreSQL is crashed
(`immediate` stop: the next start recovers from its WAL) and started again; the broker is
restarted empty (Tansu keeps everything in memory: topics, records, committed offsets
and producer ids are gone). Each fault's moment is kept on the wall clock too, to set it
against the emulator's ledger and PostgreSQL's `now()`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from notifier.devstack.postgres import EmbeddedPostgres
from notifier.devstack.tansu import TansuBroker
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import wait_until

PROCESSES = ("gateway", "sender", "webhook", "recorder")
FAULTS = (*PROCESSES, "postgres", "broker")
RECOVERY_SECONDS = 90.0


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    # Does the damage and returns at once with a note (what was hit).
    strike: Callable[[], str]
    # Waits (deadline-bound) until the part is back; returns a note on how it came back.
    recover: Callable[[], str]


@dataclass(frozen=True, slots=True)
class FaultRecord:
    name: str
    at_wall: float  # epoch seconds, comparable with the ledger and PostgreSQL
    at: float  # monotonic
    recovered: float  # monotonic
    note: str

    @property
    def recovery_seconds(self) -> float:
        return self.recovered - self.at


def inject(fault: Fault) -> FaultRecord:
    at_wall, at = time.time(), time.monotonic()
    struck = fault.strike()
    recovered = fault.recover()
    return FaultRecord(fault.name, at_wall, at, time.monotonic(), f"{struck}; {recovered}")


def build(name: str, stack: Stack, postgres: EmbeddedPostgres, broker: TansuBroker) -> Fault:
    if name in PROCESSES:
        return kill(stack, name)
    if name == "postgres":
        return restart_postgres(stack, postgres)
    if name == "broker":
        return restart_broker(stack, broker)
    raise ValueError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")


def kill(stack: Stack, name: str) -> Fault:
    """SIGKILL to the process; back once the Supervisor restarted it and it is ready."""
    killed: list[int] = []

    def strike() -> str:
        killed.append(stack.supervisor.send_signal(name, signal.SIGKILL))
        return f"SIGKILL to pid {killed[0]}"

    def recover() -> str:
        new_pid = wait_until(
            lambda: (pid := stack.supervisor.pid(name)) not in (None, killed[0]) and pid,
            timeout=RECOVERY_SECONDS,
            message=f"the Supervisor to restart {name}",
        )
        stack.wait_ready(name, timeout=RECOVERY_SECONDS)
        return f"restarted as pid {new_pid} and ready"

    return Fault(name, strike, recover)


def restart_postgres(stack: Stack, postgres: EmbeddedPostgres) -> Fault:
    """A crash of the server (no checkpoint, every connection cut) and a start with recovery."""

    def strike() -> str:
        postgres.stop(mode="immediate")
        return "crashed (immediate stop)"

    def recover() -> str:
        started = time.monotonic()
        postgres.start()
        up = time.monotonic() - started
        for name in PROCESSES:
            stack.wait_ready(name, timeout=RECOVERY_SECONDS)
        return f"started again in {up:.1f}s, committed data recovered"

    return Fault("postgres", strike, recover)


def restart_broker(stack: Stack, broker: TansuBroker) -> Fault:
    """An empty broker on the same port; back once the processes have put their topics
    back (the TopicKeepers) with the configured partition count."""
    topics = [stack.topics["KAFKA_TOPIC_OUTBOUND"], stack.topics["KAFKA_TOPIC_EVENTS"]]

    def strike() -> str:
        broker.stop()
        return "stopped (topics, records, offsets lost)"

    def recover() -> str:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})

        def partitions() -> dict[str, int]:
            found = admin.list_topics(timeout=5).topics
            counts = {t: len(found[t].partitions) for t in topics if t in found}
            return counts if len(counts) == len(topics) else {}

        counts = wait_until(
            partitions,
            timeout=RECOVERY_SECONDS,
            interval=0.2,
            message="the processes to create their topics again",
        )
        for name in PROCESSES:
            stack.wait_ready(name, timeout=RECOVERY_SECONDS)
        shown = ", ".join(f"{t.split('.')[1]} {n} partitions" for t, n in counts.items())
        return f"started empty; topics back: {shown}"

    return Fault("broker", strike, recover)
