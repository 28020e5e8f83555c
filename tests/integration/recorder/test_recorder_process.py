"""The recorder as deployed: its entry point wired by main, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from typing import IO, Any

import pytest
from confluent_kafka import Producer

from notifier.common.domain.status import MessageStatus as S
from notifier.common.payloads import encode_status_change
from tests.fixtures.kafka import producer_config
from tests.fixtures.waiting import random_suffix, wait_until
from tests.integration.recorder.message_rows import Messages, event

pytestmark = pytest.mark.integration


def _read_lines(stream: IO[str], lines: queue.Queue[dict[str, Any]]) -> None:
    for line in stream:
        try:
            lines.put(json.loads(line))
        except ValueError:
            lines.put({"msg": line.rstrip()})


def test_the_recorder_process_applies_events_serves_health_and_stops_on_sigterm(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    database_url: str,
    messages: Messages,
) -> None:
    events, dlq = topic_factory("recorder-events"), topic_factory("recorder-dlq")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_EVENTS": events,
        "KAFKA_TOPIC_DLQ": dlq,
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "RECORDER_GROUP_ID": f"recorder-process-{random_suffix()}",
        "RECORDER_BATCH_MAX_AGE_MS": "20",
        "METRICS_PORT": "0",
    }
    [mid] = messages.create()
    producer = Producer(producer_config(kafka_bootstrap))
    producer.produce(events, encode_status_change(event(mid, S.DELIVERED)), key=b"%d" % mid)
    assert producer.flush(10) == 0

    process = subprocess.Popen(
        [sys.executable, "-m", "notifier.recorder.main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    seen: list[dict[str, Any]] = []
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()

    def logged(msg: str) -> dict[str, Any] | None:
        while not lines.empty():
            seen.append(lines.get())
        return next((line for line in seen if line.get("msg") == msg), None)

    try:
        listening = wait_until(lambda: logged("metrics listening"), timeout=15)
        assert listening is not None
        base = f"http://127.0.0.1:{listening['port']}"
        wait_until(lambda: messages.row(mid).status is S.DELIVERED, timeout=20)
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
            assert reply.status == 200

        def metrics() -> str:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
                return str(reply.read().decode())

        # Counted just after the commit that made the row visible.
        applied = 'notifier_recorder_events_applied_total{source="twilio",status="DELIVERED"} 1.0'
        wait_until(lambda: applied in metrics(), timeout=5, message=lambda: metrics())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert logged("recorder loop stopped")
    assert "+447700900123" not in json.dumps(seen)
