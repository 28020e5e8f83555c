"""The whole pipeline as real processes, for P5, the soak and the stage profile: gateway,
sender, webhook and recorder, with the Twilio emulator posting signed status callbacks
(sent, delivered, read) back to the webhook; and how far a set of messages has got.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness import Bench, BenchError, Service, Services, accept_all
from procstats import PidSource, with_children

from notifier.devstack.processes import poll_until

# One sender number at WhatsApp's highest tier, and an emulator without a limit or
# latency, so Twilio's pace is not what limits the pipeline.
SENDER_MPS = 1000
EMULATOR_LATENCY_MS = 0
# Callbacks 10x sooner than the emulator's "good day" (sent 20 ms, delivered 100 ms,
# read 300 ms after the API call): the delays only shift them, they cost nothing; more
# senders than the webhook has request threads, so it is never left waiting for one.
CALLBACK_OPTIONS = ("--callback-speed", "10", "--callback-workers", "16")
OURS = ("gateway", "sender", "webhook", "recorder")
DONE_STATUSES = ("DELIVERED", "READ")


@dataclass(frozen=True, slots=True)
class Pipeline:
    gateway: Service
    sender: Service
    webhook: Service
    recorder: Service
    emulator: Service
    target: str
    """host:port of the gateway's gRPC server."""
    emulator_url: str

    def ours(self) -> dict[str, PidSource]:
        """Our four processes, each with its children (the webhook's gunicorn workers)."""
        return {name: with_children(getattr(self, name).pid) for name in OURS}

    def everything(self, bench: Bench) -> dict[str, PidSource]:
        """Ours, the emulator, PostgreSQL and the broker: every process the pipeline runs on."""
        return {
            **self.ours(),
            "emulator": with_children(self.emulator.pid),
            **bench.backend_pids(),
        }

    def require_alive(self) -> None:
        for name in (*OURS, "emulator"):
            getattr(self, name).require_alive()


def start_pipeline(services: Services, env: Mapping[str, str]) -> Pipeline:
    """Starts every process (consumers joined and healthy) and sends one message through."""
    webhook, webhook_url = services.webhook(env)
    emulator, emulator_url = services.emulator(0, EMULATOR_LATENCY_MS, callbacks=CALLBACK_OPTIONS)
    gateway, target = services.gateway(env)
    recorder = services.recorder(env)
    sender = services.sender(
        {**env, "WHATSAPP_SENDER_MPS": str(SENDER_MPS)}, emulator_url, webhook_url=webhook_url
    )
    return Pipeline(gateway, sender, webhook, recorder, emulator, target, emulator_url)


def send_and_wait(
    bench: Bench, pipeline: Pipeline, database: str, indices: Sequence[int], timeout: float
) -> list[int]:
    """Accepts request number i for each index and waits until all of them are READ."""
    ids = accept_all(pipeline.target, indices)
    wait_for_status(bench, pipeline, database, ids, ("READ",), timeout)
    return ids


def count_reached(bench: Bench, database: str, ids: Sequence[int], statuses: Sequence[str]) -> int:
    sql = "SELECT count(*) FROM messages WHERE id = ANY(%s) AND status = ANY(%s)"
    return int(bench.query(database, sql, list(ids), list(statuses))[0][0])


def wait_for_status(
    bench: Bench,
    pipeline: Pipeline,
    database: str,
    ids: Sequence[int],
    statuses: Sequence[str],
    timeout: float,
) -> None:
    """Until every message in `ids` has one of `statuses`; fails if a process dies."""
    seen = [0]

    def reached() -> bool:
        pipeline.require_alive()
        seen[0] = count_reached(bench, database, ids, statuses)
        return seen[0] >= len(ids)

    if not poll_until(reached, timeout, interval=0.1):
        behind = bench.query(
            database,
            "SELECT status, count(*), (array_agg(id ORDER BY id))[1:5] FROM messages"
            " WHERE id = ANY(%s) AND NOT status = ANY(%s) GROUP BY status",
            list(ids),
            list(statuses),
        )
        raise BenchError(
            f"only {seen[0]} of {len(ids)} messages reached {'/'.join(statuses)} "
            f"within {timeout:.0f} s; the others: "
            + "; ".join(
                f"{n} {status} (ids {', '.join(map(str, few))})" for status, n, few in behind
            )
        )
