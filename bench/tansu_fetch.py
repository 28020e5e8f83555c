"""The dev broker's CPU as its topic grows: Tansu's in-memory storage answers each fetch
at a cost that grows with the records the topic holds, so a long run slows down by itself.

A producer writes `--rate` small records per second to a 12-partition topic for
`--seconds`, first with nobody consuming (the baseline, same run), then again with one
consumer group member reading them as our services do (fetch.wait.max.ms 10, offsets
stored after each record). Tansu's CPU is printed for every `--window` seconds with the
records the topic holds by then. Not part of `make bench`: it measures the broker, not us.

    .venv/bin/python bench/tansu_fetch.py [--rate 600] [--seconds 120] [--window 20]
"""

from __future__ import annotations

import argparse
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from procstats import cpu_seconds

from notifier.devstack.tansu import CONSUMER_GROUP_TIMEOUTS, TANSU_CLIENT_ENV, TansuBroker

PARTITIONS = 12
VALUE = b"x" * 150  # about a send command or a status event
FETCH_WAIT_MS = int(TANSU_CLIENT_ENV["KAFKA_CONSUMER_CONFIG_FETCH_WAIT_MAX_MS"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=600.0, help="records per second")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each run")
    parser.add_argument("--window", type=float, default=20.0, help="seconds per line")
    args = parser.parse_args()
    if min(args.rate, args.seconds, args.window) <= 0 or args.window > args.seconds:
        parser.error("--rate, --seconds and --window must be positive, --window <= --seconds")
    for consuming in (False, True):
        label = "with a consumer" if consuming else "producer only (baseline)"
        print(f"== {label}: {args.rate:.0f} records/s for {args.seconds:.0f} s", flush=True)
        run(args.rate, args.seconds, args.window, consuming)


def run(rate: float, seconds: float, window: float, consuming: bool) -> None:
    with TansuBroker() as broker:
        servers = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": servers})
        for future in admin.create_topics([NewTopic("growth", PARTITIONS, 1)]).values():
            future.result()
        produced = [0]
        stop = threading.Event()
        threads = [threading.Thread(target=_produce, args=(servers, rate, stop, produced))]
        if consuming:
            threads.append(threading.Thread(target=_consume, args=(servers, stop)))
        for thread in threads:
            thread.start()
        pid = broker.pid
        assert pid is not None
        started = time.monotonic()
        before = cpu_seconds(pid)
        try:
            for n in range(1, int(seconds // window) + 1):
                time.sleep(max(0.0, started + n * window - time.monotonic()))
                now = cpu_seconds(pid)
                print(
                    f"  {n * window:4.0f} s: {produced[0]:8,} records held; "
                    f"Tansu CPU {(now - before) / window:5.0%} of one core",
                    flush=True,
                )
                before = now
        finally:
            stop.set()
            for thread in threads:
                thread.join()


def _produce(servers: str, rate: float, stop: threading.Event, produced: list[int]) -> None:
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5, "enable.idempotence": True})
    tick = 0.1
    per_tick = max(1, round(rate * tick))
    next_at = time.monotonic()
    while not stop.is_set():
        for _ in range(per_tick):
            producer.produce("growth", VALUE, str(produced[0]).encode())
            produced[0] += 1
        producer.poll(0)
        next_at += tick
        stop.wait(max(0.0, next_at - time.monotonic()))
    producer.flush(10)


def _consume(servers: str, stop: threading.Event) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": "growth",
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            **CONSUMER_GROUP_TIMEOUTS,
        }
    )
    consumer.subscribe(["growth"])
    try:
        while not stop.is_set():
            for record in consumer.consume(500, 0.1):
                if record.error() is None:
                    consumer.store_offsets(record)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
