"""P6: accept -> SENDING (the SID recorded in PostgreSQL by the recorder), one message at
a time, through gateway, sender and recorder as real processes; emulator latency 0.

The baseline is the transport floor measured in the same run: two Kafka hops (the path
has two: outbound, then events) with the services' producer and consumer settings.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg2
from confluent_kafka import Consumer, Producer
from figures import Figure, percentile
from harness import Bench, BenchError, http_json
from workload import send_request

from notifier.common.config import Env, KafkaSettings
from notifier.common.kafka import consumer_config, producer_config
from notifier.common.pb import whatsapp_pb2_grpc
from notifier.devstack.processes import poll_until
from notifier.devstack.tansu import TANSU_CLIENT_ENV

NAME = "P6"
TARGET_P50_MS = 50.0
MPS = 80
WARMUP_MESSAGES = 5
# A short random pause between messages, so they do not fall into step with a timer.
PAUSE_SECONDS = (0.02, 0.08)


@dataclass(frozen=True, slots=True)
class Sample:
    message_id: int
    sent: float
    """Wall-clock time the accept call started."""
    accepted: float
    """...and returned."""
    seen: float
    """...and the first poll that saw SENDING in PostgreSQL."""


# The headline runs as `make run` does: every default, plus the one client setting the dev
# stack gives the embedded broker (TANSU_CLIENT_ENV): Tansu answers a waiting fetch only
# when fetch.wait.max.ms (librdkafka: 500 ms) runs out, not when a record arrives, which a
# real Kafka does. The second run keeps librdkafka's 500 ms to show what that costs here.
CONFIGURATIONS: tuple[tuple[str, Mapping[str, str]], ...] = (
    ("dev-stack settings (fetch.wait.max.ms=10 on Tansu)", TANSU_CLIENT_ENV),
    ("librdkafka's fetch.wait.max.ms=500 on Tansu", {}),
)


def run(bench: Bench) -> list[Figure]:
    count = 30 if bench.quick else 100
    probes = 20 if bench.quick else 40
    figures: list[Figure] = []
    for n, (label, overrides) in enumerate(CONFIGURATIONS):
        hop_ms = kafka_hop_ms(bench, probes, overrides)
        floor = 2 * statistics.median(hop_ms)
        print(
            f"  {label}: one Kafka hop (produce -> consume) p50 {statistics.median(hop_ms):.1f} "
            f"ms, p99 {percentile(hop_ms, 0.99):.1f} ms",
            flush=True,
        )
        database = bench.database(f"p6_{n}")
        env = bench.service_env(database, f"p6-{n}")
        consumers = {**env, **overrides}
        with bench.services(f"p6-{n}") as services:
            _emulator, emulator_url = services.emulator(MPS, latency_ms=0)
            _gateway, target = services.gateway(env)
            services.recorder(consumers)
            services.sender({**consumers, "WHATSAPP_SENDER_MPS": str(MPS)}, emulator_url)
            first = bench.index_block()
            samples = measure(database, target, iter(range(first, first + 10 * count)), count)
            _print_breakdown(label, samples, database, emulator_url)
        latencies = [(s.seen - s.accepted) * 1000 for s in samples]
        p50 = statistics.median(latencies)
        headline = n == 0
        figures += [
            Figure(
                NAME,
                f"accept -> SENDING p50, {label}",
                p50,
                "ms",
                baseline=floor,
                baseline_name="2 Kafka hops",
                target=f"< {TARGET_P50_MS:.0f} ms" if headline else "",
                passed=p50 < TARGET_P50_MS if headline else None,
            ),
            Figure(NAME, f"accept -> SENDING p99, {label}", percentile(latencies, 0.99), "ms"),
        ]
    for figure in figures:
        print(figure.line())
    return figures


def measure(database: str, target: str, indices: Iterator[int], count: int) -> list[Sample]:
    """Sends WARMUP_MESSAGES + `count` messages one at a time over one channel; returns
    the measured ones."""
    pauses = random.Random(6)
    conn = psycopg2.connect(database)
    conn.autocommit = True
    samples: list[Sample] = []
    try:
        with conn.cursor() as cur, grpc.insecure_channel(target) as channel:
            stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
            for n in range(WARMUP_MESSAGES + count):
                sent = time.time()
                reply = stub.SendTemplateMessage(send_request(next(indices)), timeout=30)
                accepted = time.time()
                _wait_sending(cur, reply.message_id, timeout=60 if n == 0 else 10)
                if n >= WARMUP_MESSAGES:
                    samples.append(Sample(reply.message_id, sent, accepted, time.time()))
                time.sleep(pauses.uniform(*PAUSE_SECONDS))
    finally:
        conn.close()
    return samples


def _wait_sending(cur: Any, message_id: int, timeout: float) -> None:
    def sending() -> bool:
        cur.execute("SELECT status FROM messages WHERE id = %s", (message_id,))
        return bool(cur.fetchone()[0] != "QUEUED")

    if not poll_until(sending, timeout, interval=0.001):
        raise BenchError(f"message {message_id} did not reach SENDING in {timeout:.0f} s")


def _print_breakdown(label: str, samples: list[Sample], database: str, emulator_url: str) -> None:
    """Where the time goes, from the clocks of each stage (one machine, one wall clock)."""
    ids = [s.message_id for s in samples]
    conn = psycopg2.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT message_id, extract(epoch FROM occurred_at), "
                "extract(epoch FROM recorded_at) FROM message_status_history "
                "WHERE status = 'SENDING' AND message_id = ANY(%s)",
                (ids,),
            )
            history = {row[0]: (float(row[1]), float(row[2])) for row in cur.fetchall()}
    finally:
        conn.close()
    arrived = {
        int(m["mid"]): m["arrived_at"] for m in http_json(f"{emulator_url}/_emulator/messages")
    }
    stages: Mapping[str, list[float]] = {
        "accept call": [s.accepted - s.sent for s in samples],
        "accept -> Twilio call arrives": [arrived[s.message_id] - s.accepted for s in samples],
        "Twilio call -> SENDING event": [
            history[s.message_id][0] - arrived[s.message_id] for s in samples
        ],
        "event -> recorder's transaction": [
            history[s.message_id][1] - history[s.message_id][0] for s in samples
        ],
        "-> seen committed": [s.seen - history[s.message_id][1] for s in samples],
        "accept -> SENDING (total)": [s.seen - s.accepted for s in samples],
    }
    print(f"  {label}, {len(samples)} messages, p50 / p99 ms:")
    for stage, values in stages.items():
        ms = [v * 1000 for v in values]
        print(f"    {stage:34s} {statistics.median(ms):7.1f} / {percentile(ms, 0.99):7.1f}")


def kafka_hop_ms(bench: Bench, count: int, overrides: Mapping[str, str]) -> list[float]:
    """Produce -> consume latency of single records at random moments, with our services'
    client settings (plus `overrides`) and topic shape: keyed, 12 partitions, a group."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": bench.kafka.bootstrap_servers}
    producing = KafkaSettings.from_env(Env(env))  # the overrides are consumer settings
    consuming = KafkaSettings.from_env(Env({**env, **overrides}))
    topic = f"bench.p6.hop.{len(overrides)}"
    bench.kafka.create_topics([topic], partitions=producing.partitions)
    producer = Producer(producer_config(producing, "bench-hop"))
    consumer = Consumer(
        consumer_config(consuming, topic, "bench-hop", {"session.timeout.ms": 6000})
    )
    consumer.subscribe([topic])
    pauses = random.Random(1)
    hops: list[float] = []
    try:
        if not poll_until(lambda: bool(consumer.poll(0.1) or consumer.assignment()), 30):
            raise BenchError("the probe consumer never got its partitions")
        for n in range(count):
            time.sleep(pauses.uniform(0.02, 0.3))
            value = f"probe-{n}".encode()
            started = time.perf_counter()
            producer.produce(topic, key=value, value=value)
            producer.poll(0)
            while (record := consumer.poll(5.0)) is None or record.value() != value:
                if record is None:
                    raise BenchError("a probe record did not come back within 5 s")
            hops.append((time.perf_counter() - started) * 1000)
    finally:
        consumer.close()
        producer.flush(5)
    return hops
