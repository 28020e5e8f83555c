"""The Twilio emulator as the real `twilio` SDK sees it, over HTTP, plus its CLI.

Needs no PostgreSQL or Kafka: the emulator runs in-process (one per module) or as a subprocess.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import IO

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifier.twilio_emulator import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    EmulatorServer,
    FaultRule,
)

SENDER = "whatsapp:+14155238886"
RECIPIENT = "whatsapp:+447700900123"
CONTENT_SID = "HX" + "1234abcd" * 4
SERVICE_SID = "MG" + "5678ef90" * 4


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def clean(emulator: EmulatorServer) -> None:
    emulator.reset()
    emulator.configure(mps=0, latency_ms=0, jitter_ms=0)


def client_for(
    emulator: EmulatorServer, token: str = DEFAULT_AUTH_TOKEN, timeout: float | None = None
) -> Client:
    client = Client(DEFAULT_ACCOUNT_SID, token, http_client=TwilioHttpClient(timeout=timeout))
    client.api.base_url = emulator.url
    return client


@pytest.fixture
def client(emulator: EmulatorServer) -> Client:
    return client_for(emulator)


def send(client: Client, to: str = RECIPIENT, mid: str | None = None, **kwargs: object) -> object:
    kwargs.setdefault("from_", SENDER)
    callback = f"https://hooks.example.com/webhook/status?mid={mid}" if mid else None
    return client.messages.create(
        to=to,
        content_sid=CONTENT_SID,
        content_variables=json.dumps({"1": "ORD-1"}),
        status_callback=callback,
        **kwargs,
    )


def rest_error(call: object) -> TwilioRestException:
    assert callable(call)
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_template_send_returns_an_sm_sid_and_is_recorded(
    client: Client, emulator: EmulatorServer
) -> None:
    message = client.messages.create(
        to=RECIPIENT,
        from_=SENDER,
        content_sid=CONTENT_SID,
        content_variables=json.dumps({"1": "ORD-42", "2": "tomorrow"}),
        status_callback="https://hooks.example.com/webhook/status?mid=42",
    )
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.from_) == ("queued", RECIPIENT, SENDER)
    assert message.date_created is not None
    [recorded] = emulator.messages()
    assert recorded.sid == message.sid
    assert recorded.mid == "42"
    assert recorded.content_sid == CONTENT_SID
    assert recorded.content_variables == {"1": "ORD-42", "2": "tomorrow"}
    assert client.messages(message.sid).fetch().sid == message.sid


def test_messaging_service_sender_is_accepted(client: Client, emulator: EmulatorServer) -> None:
    message = send(client, from_=None, messaging_service_sid=SERVICE_SID)
    assert message.status == "accepted"  # type: ignore[attr-defined]
    assert message.messaging_service_sid == SERVICE_SID  # type: ignore[attr-defined]
    assert emulator.stats().senders[SERVICE_SID].accepted == 1


def test_wrong_auth_token_raises_20003_with_401(emulator: EmulatorServer) -> None:
    error = rest_error(lambda: send(client_for(emulator, token="not-the-token")))
    assert (error.status, error.code) == (401, 20003)
    assert emulator.messages() == []


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
        ("+15005550010", 63024),
    ],
)
def test_magic_numbers_fail_with_twilios_code(client: Client, number: str, code: int) -> None:
    error = rest_error(lambda: send(client, to=f"whatsapp:{number}"))
    assert (error.status, error.code) == (400, code)


def test_invalid_content_variables_raise_21656(client: Client) -> None:
    call = client.messages.create
    error = rest_error(
        lambda: call(to=RECIPIENT, from_=SENDER, content_sid=CONTENT_SID, content_variables="{")
    )
    assert (error.status, error.code) == (400, 21656)


def test_exceeding_mps_raises_429_with_20429(client: Client, emulator: EmulatorServer) -> None:
    emulator.configure(mps=3)
    codes = []
    for _ in range(20):  # 20 calls take a few ms; even a slow machine exceeds 3 in a second
        try:
            send(client)
            codes.append(201)
        except TwilioRestException as exc:
            assert exc.status == 429
            codes.append(exc.code)
    assert codes[:3] == [201, 201, 201]
    assert 20429 in codes
    stats = emulator.stats()
    assert stats.peak_per_second == 3
    assert stats.throttled == codes.count(20429)


def test_latency_is_applied_before_answering(client: Client, emulator: EmulatorServer) -> None:
    emulator.configure(latency_ms=300)
    started = time.perf_counter()
    send(client)
    elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 3.0


def test_injected_500_fails_once_then_sends_work(client: Client, emulator: EmulatorServer) -> None:
    emulator.fail_next(FaultRule(status=500, code=20500))
    error = rest_error(lambda: send(client))
    assert (error.status, error.code) == (500, 20500)
    send(client)
    assert emulator.stats().accepted == 1


def test_injected_429_is_counted_as_throttled(client: Client, emulator: EmulatorServer) -> None:
    emulator.fail_next(FaultRule(status=429, code=20429))
    assert rest_error(lambda: send(client)).code == 20429
    assert emulator.stats().throttled == 1


def test_a_client_timeout_after_acceptance_makes_the_retry_a_duplicate(
    emulator: EmulatorServer,
) -> None:
    impatient = client_for(emulator, timeout=0.2)
    emulator.fail_next(FaultRule(delay_ms=1500))
    with pytest.raises(requests.exceptions.Timeout):
        send(impatient, mid="77")
    send(impatient, mid="77")  # the sender's retry
    stats = emulator.stats()
    assert (stats.accepted, stats.duplicates, dict(stats.duplicate_mids)) == (2, 1, {"77": 2})


def test_connection_is_kept_alive_with_content_length(emulator: EmulatorServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        for _ in range(2):
            conn.request("GET", "/_emulator/stats")
            response = conn.getresponse()
            body = response.read()
            assert response.version == 11
            assert response.getheader("Content-Length") == str(len(body))
            assert not response.will_close
    finally:
        conn.close()


def test_control_api_over_http(client: Client, emulator: EmulatorServer) -> None:
    send(client, mid="5")
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/config",
        data=json.dumps({"mps": 80, "fail_to": {"+447700900999": {"status": 503}}}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["mps"] == 80
    with urllib.request.urlopen(f"{emulator.url}/_emulator/messages", timeout=5) as response:
        [listed] = json.load(response)
    assert (listed["mid"], listed["to"]) == ("5", RECIPIENT)
    assert rest_error(lambda: send(client, to="whatsapp:+447700900999")).status == 503
    with urllib.request.urlopen(f"{emulator.url}/_emulator/stats", timeout=5) as response:
        stats = json.load(response)
    assert (stats["accepted"], stats["rejected_by_code"]) == (1, {"20503": 1})


def read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def next_json_line(lines: queue.Queue[str], timeout: float = 10.0) -> dict[str, object]:
    line = lines.get(timeout=timeout)
    decoded = json.loads(line)
    assert isinstance(decoded, dict)
    return decoded


def test_cli_logs_masked_json_lines_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier.twilio_emulator.main", "--port", "0", "--mps", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""},
    )
    try:
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
        started = next_json_line(lines)
        assert (started["account_sid"], started["mps"]) == (DEFAULT_ACCOUNT_SID, 5)
        client = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
        client.api.base_url = str(started["url"])
        send(client, mid="9")
        accepted = next_json_line(lines)
        assert (accepted["msg"], accepted["message_id"]) == ("accepted", "9")
        assert accepted["to"] == "whatsapp:+44********23"
        assert "447700900123" not in json.dumps(accepted)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
