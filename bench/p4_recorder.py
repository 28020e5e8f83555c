"""P4: status updates the recorder applies per second ÷ a raw psycopg2 `execute_values`
UPDATE of as many rows, on the same database in the same run.

N messages wait in `SENT`; N `delivered` callbacks (as the webhook publishes them) are put
on the events topic before the recorder starts, so it drains a backlog. Its rate runs from
the first applied event to the last, read from its own counter
(`notifier_recorder_events_applied_total`, polled). The baseline updates N other rows of
the same table in pages of the recorder's batch size, one commit per page, before and after.
A third raw run also inserts the history rows the recorder writes, to show how much of the
gap is the extra table and how much is the recorder itself.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from datetime import UTC, datetime

import psycopg2
from callbacks import message_sid
from confluent_kafka import Producer
from figures import Figure
from harness import Bench, BenchError, Service, metric_total
from procstats import CpuMeter, PidSource, with_children
from psycopg2.extras import execute_values

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.payloads import encode_status_change
from notifier.recorder.settings import RecorderSettings

NAME = "P4"
TARGET_RATIO = 0.5
RSS_TARGET_MIB = 200.0
BATCH_SIZE: int = next(
    f.default for f in dataclasses.fields(RecorderSettings) if f.name == "batch_size"
)  # type: ignore[assignment]
APPLIED = "notifier_recorder_events_applied_total"
POLL_SECONDS = 0.02

# N messages per range: 1..N for the recorder, then one range per baseline run.
_INSERT = """
INSERT INTO messages (id, phone_number, template_id, content_sid, status, twilio_sid, order_id)
SELECT i, '+4477' || lpad(i::text, 8, '0'), 'order_confirmation', 'HX' || md5('t'),
       'SENT', 'SM' || md5('bench-' || i), 'ORD-' || i
FROM generate_series(%s::bigint, %s::bigint) AS i
"""
_BASELINE_UPDATE = """
UPDATE messages AS m SET status = v.status, updated_at = now()
FROM (VALUES %s) AS v(id, status) WHERE m.id = v.id
"""
_HISTORY_INSERT = """
INSERT INTO message_status_history (message_id, status, occurred_at, source) VALUES %s
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Drain:
    """The recorder draining its backlog: events applied in the window, its length, CPU."""

    events: float
    seconds: float
    cpu: dict[str, float]
    batches: float
    apply_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def run(bench: Bench) -> list[Figure]:
    count = 10_000 if bench.quick else 50_000
    database = bench.database("p4")
    env = bench.service_env(database, "p4")
    bench.kafka.create_topics([env["KAFKA_TOPIC_EVENTS"]], partitions=12)
    _insert_messages(database, 1, 4 * count)
    backends = bench.backend_pids()
    postgres = {"postgres": backends["postgres"]}
    baselines = [_baseline(database, _ids(count, 1), postgres)]
    _produce_callbacks(bench, env["KAFKA_TOPIC_EVENTS"], _ids(count, 0))
    with bench.services("p4") as services:
        recorder = services.recorder(env, wait=False)
        drain = _measure_drain(recorder, count, postgres)
    baselines.append(_baseline(database, _ids(count, 2), postgres))
    same_writes = _baseline(database, _ids(count, 3), postgres, history=True)
    delivered = bench.query(
        database,
        "SELECT count(*) FROM messages WHERE id <= %s AND status = 'DELIVERED'",
        count,
    )[0][0]
    history = bench.query(
        database,
        "SELECT count(*) FROM message_status_history WHERE message_id <= %s",
        count,
    )[0][0]
    base_rate = statistics.mean(b[0] for b in baselines)
    ratio = drain.rate / base_rate
    print(
        f"  recorder: {drain.events:,.0f} events in {drain.seconds:.2f} s, "
        f"{drain.batches:.0f} batches ({drain.events / max(drain.batches, 1):.0f} events each), "
        f"{drain.apply_seconds / drain.seconds:.0%} of the time inside the batch transaction; "
        f"CPU µs per event: recorder {drain.cpu['recorder'] / drain.events * 1e6:.0f}, "
        f"PostgreSQL {drain.cpu['postgres'] / drain.events * 1e6:.0f}"
    )
    figures = [
        Figure(
            NAME,
            "status updates applied/s by the recorder (backlog drained)",
            drain.rate,
            "rows/s",
            baseline=base_rate,
            baseline_name=f"execute_values UPDATE, {BATCH_SIZE}-row pages, commit each",
            ratio=ratio,
            target=f"ratio >= {TARGET_RATIO}",
            passed=ratio >= TARGET_RATIO,
        ),
        Figure(
            NAME,
            "the same writes in raw SQL (UPDATE + history INSERT, execute_values)",
            same_writes[0],
            "rows/s",
            baseline=base_rate,
            baseline_name="raw UPDATE alone",
            ratio=same_writes[0] / base_rate,
        ),
        Figure(
            NAME,
            "recorder ÷ the same writes in raw SQL",
            drain.rate,
            "rows/s",
            baseline=same_writes[0],
            baseline_name="raw UPDATE + history INSERT",
            ratio=drain.rate / same_writes[0],
        ),
        Figure(
            NAME,
            "messages DELIVERED, history rows",
            delivered,
            "rows",
            baseline=count,
            baseline_name="callbacks fed",
            target="= fed",
            passed=delivered == count and history == count,
        ),
        Figure(
            NAME,
            "CPU per update: recorder",
            drain.cpu["recorder"] / drain.events * 1e6,
            "µs",
        ),
        Figure(
            NAME,
            "CPU per update: PostgreSQL",
            drain.cpu["postgres"] / drain.events * 1e6,
            "µs",
            baseline=statistics.mean(b[1] for b in baselines),
            baseline_name="raw UPDATE",
        ),
    ]
    peak = next(m for m in bench.memory if m.name == "p4/recorder")
    figures.append(
        Figure(
            NAME,
            f"recorder RSS (VmHWM {peak.hwm_mib:.0f}, sampled {peak.sampled_rss_mib:.0f})",
            peak.peak_mib,
            "MiB",
            target=f"< {RSS_TARGET_MIB:.0f} MiB",
            passed=peak.peak_mib < RSS_TARGET_MIB,
        )
    )
    for figure in figures:
        print(figure.line())
    return figures


def _insert_messages(database: str, first: int, last: int) -> None:
    conn = psycopg2.connect(database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_INSERT, (first, last))
            cur.execute("SELECT setval('messages_id_seq', %s)", (last,))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE messages")
    finally:
        conn.close()


def _ids(count: int, block: int) -> range:
    """Message ids of one block: 0 for the recorder, then one per raw run."""
    return range(block * count + 1, (block + 1) * count + 1)


def _baseline(
    database: str, ids: range, postgres: dict[str, PidSource], history: bool = False
) -> tuple[float, float]:
    """execute_values UPDATE of `ids` to DELIVERED (and with `history` their history rows);
    returns (rows/s, PostgreSQL CPU µs per row)."""
    rows = [(i, "DELIVERED") for i in ids]
    now = datetime.now(UTC)
    entries = [(i, "DELIVERED", now, "twilio") for i in ids]
    conn = psycopg2.connect(database)
    meter = CpuMeter(postgres, reaped=True)
    try:
        before = meter.snapshot()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for page in range(0, len(rows), BATCH_SIZE):
                page_rows = rows[page : page + BATCH_SIZE]
                execute_values(cur, _BASELINE_UPDATE, page_rows, page_size=BATCH_SIZE)
                if history:
                    page_entries = entries[page : page + BATCH_SIZE]
                    execute_values(cur, _HISTORY_INSERT, page_entries, page_size=BATCH_SIZE)
                conn.commit()
        seconds = time.perf_counter() - started
        spent = CpuMeter.spent(before, meter.snapshot())
    finally:
        conn.close()
    rate = len(rows) / seconds
    cpu_us = spent["postgres"] / len(rows) * 1e6
    what = "raw UPDATE + history INSERT" if history else "raw UPDATE"
    print(
        f"  {what}: {len(rows):,} rows in {seconds:.2f} s = {rate:,.0f} rows/s; "
        f"PostgreSQL CPU {cpu_us:.0f} µs per row",
        flush=True,
    )
    return rate, cpu_us


def _produce_callbacks(bench: Bench, topic: str, ids: range) -> None:
    """One `delivered` callback per message, keyed by message id, as the webhook sends it."""
    producer = Producer({"bootstrap.servers": bench.kafka.bootstrap_servers, "linger.ms": 20})
    now = datetime.now(UTC)
    for i in ids:
        change = StatusChange(
            message_id=MessageId(i),
            twilio_sid=TwilioSid(message_sid(i)),
            status=MessageStatus.DELIVERED,
            occurred_at=now,
            source=Source.TWILIO,
        )
        while True:
            try:
                producer.produce(topic, encode_status_change(change), str(i).encode())
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60) != 0:
        raise BenchError("the callbacks were not all acknowledged by the broker")


def _measure_drain(recorder: Service, count: int, postgres: dict[str, PidSource]) -> Drain:
    """Polls the recorder's counter from its first applied event until all `count` are."""
    meter = CpuMeter({"recorder": with_children(recorder.pid), **postgres}, reaped=True)
    deadline = time.monotonic() + 120
    first: tuple[float, float, dict[str, float], float, float] | None = None
    while time.monotonic() < deadline:
        recorder.require_alive()
        try:
            applied = metric_total(recorder.metrics_url, APPLIED)
        except OSError:
            applied = 0.0  # its metrics server is not up yet
        now = time.perf_counter()
        if applied > 0 and first is None:
            first = (now, applied, meter.snapshot(), *_batches(recorder))
        if applied >= count and first is not None:
            batches, apply_seconds = _batches(recorder)
            return Drain(
                events=applied - first[1],
                seconds=now - first[0],
                cpu=CpuMeter.spent(first[2], meter.snapshot()),
                batches=batches - first[3],
                apply_seconds=apply_seconds - first[4],
            )
        time.sleep(POLL_SECONDS)
    raise BenchError(f"the recorder did not apply {count} events within 120 s")


def _batches(recorder: Service) -> tuple[float, float]:
    """Batches applied so far and the seconds spent applying them (its histogram)."""
    url = recorder.metrics_url
    return (
        metric_total(url, "notifier_recorder_batch_apply_duration_seconds_count"),
        metric_total(url, "notifier_recorder_batch_apply_duration_seconds_sum"),
    )
