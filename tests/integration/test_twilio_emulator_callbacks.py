"""The emulator's status callbacks over real HTTP: a stdlib receiver records what Twilio would post.

Needs no PostgreSQL or Kafka. Delays are tiny, so a message's whole lifecycle takes milliseconds.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from notifier.twilio_emulator import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    CallbackMode,
    CallbackRule,
    CallbackSettings,
    EmulatorServer,
    Outcome,
)
from tests.fixtures.waiting import wait_until

SENDER = "whatsapp:+14155238886"
RECIPIENT = "whatsapp:+447700900123"
CONTENT_SID = "HX" + "1234abcd" * 4
FAST = CallbackSettings(
    delays={"sent": 0.01, "delivered": 0.03, "read": 0.05, "undelivered": 0.03, "failed": 0.01},
    retry_backoff=0.01,
    timeout=2.0,
)


@dataclass(frozen=True)
class Posted:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


class Receiver:
    """A tiny keep-alive HTTP server that records every POST and answers `answer`."""

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self.answer = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                with receiver._lock:
                    receiver.posts.append(Posted(self.path, dict(self.headers), form))
                    status = receiver.answer
                reply = b"<Response/>"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def status_url(self, mid: int) -> str:
        return f"{self.base}/webhook/status?mid={mid}"

    def received(self) -> list[Posted]:
        with self._lock:
            return list(self.posts)

    def for_mid(self, mid: int) -> list[Posted]:
        return [p for p in self.received() if p.path.endswith(f"mid={mid}")]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def signature_is_valid(receiver: Receiver, posted: Posted, token: str = DEFAULT_AUTH_TOKEN) -> bool:
    url = receiver.base + posted.path
    return bool(
        RequestValidator(token).validate(url, posted.form, posted.headers["X-Twilio-Signature"])
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(callbacks=FAST) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(emulator: EmulatorServer, receiver: Receiver) -> None:
    emulator.reset()
    emulator.configure(callbacks=FAST.to_json(), callback_rules={"+447700900999": None})
    receiver.answer = 200


@pytest.fixture
def client(emulator: EmulatorServer) -> Client:
    client = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    client.api.base_url = emulator.url
    return client


def send(client: Client, callback: str | None, to: str = RECIPIENT) -> str:
    message = client.messages.create(
        to=to, from_=SENDER, content_sid=CONTENT_SID, status_callback=callback
    )
    return str(message.sid)


def wait_for(receiver: Receiver, mid: int, count: int) -> list[Posted]:
    """The callbacks posted for `mid`, once there are `count` of them."""
    wait_until(
        lambda: len(receiver.for_mid(mid)) >= count,
        timeout=10,
        message=lambda: f"{count} callbacks for mid {mid}, got {receiver.for_mid(mid)}",
    )
    return receiver.for_mid(mid)


def settled(emulator: EmulatorServer) -> bool:
    return emulator.stats().callbacks.pending == 0


def statuses(posts: list[Posted]) -> list[str]:
    return [p.form["MessageStatus"] for p in posts]


def test_a_message_gets_sent_delivered_read_in_order_signed_with_twilios_fields(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    sid = send(client, receiver.status_url(42))
    posts = wait_for(receiver, 42, 3)
    assert statuses(posts) == ["sent", "delivered", "read"]
    for posted in posts:
        form = posted.form
        assert signature_is_valid(receiver, posted)
        assert posted.path == "/webhook/status?mid=42"
        assert posted.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert (form["MessageSid"], form["SmsSid"], form["AccountSid"]) == (
            sid,
            sid,
            DEFAULT_ACCOUNT_SID,
        )
        assert form["SmsStatus"] == form["MessageStatus"]
        assert (form["To"], form["From"], form["ApiVersion"]) == (RECIPIENT, SENDER, "2010-04-01")
        assert (form["ChannelPrefix"], form["ChannelToAddress"]) == ("whatsapp", "+44770090XXXX")
        assert form["ChannelInstallSid"].startswith("XE") and len(form["ChannelInstallSid"]) == 34
        assert "ErrorCode" not in form
    assert [p.form.get("EventType") for p in posts] == [None, "DELIVERED", "READ"]
    assert posts[0].form["StructuredMessage"] == "false"
    wait_until(lambda: settled(emulator))
    stats = emulator.stats().callbacks
    assert (dict(stats.sent), stats.failed, stats.scheduled) == (
        {"sent": 1, "delivered": 1, "read": 1},
        0,
        3,
    )
    with urllib.request.urlopen(f"{emulator.url}/_emulator/callbacks", timeout=5) as response:
        listed = json.load(response)
    assert [(c["sid"], c["status"], c["http_status"]) for c in listed] == [
        (sid, "sent", 200),
        (sid, "delivered", 200),
        (sid, "read", 200),
    ]
    assert listed[0]["url"] == receiver.status_url(42)


def test_undelivered_mode_ends_with_30008_unknown_error(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"mode": "undelivered"})
    send(client, receiver.status_url(43))
    posts = wait_for(receiver, 43, 2)
    assert statuses(posts) == ["sent", "undelivered"]
    assert (posts[1].form["ErrorCode"], posts[1].form["ErrorMessage"]) == ("30008", "Unknown error")
    assert posts[1].form["EventType"] == "UNDELIVERED"
    assert all(signature_is_valid(receiver, p) for p in posts)


def test_failed_mode_posts_only_failed_with_63016(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"mode": "failed"})
    send(client, receiver.status_url(44))
    [posted] = wait_for(receiver, 44, 1)
    wait_until(lambda: settled(emulator))
    assert len(receiver.for_mid(44)) == 1
    assert posted.form["MessageStatus"] == "failed"
    assert posted.form["ErrorCode"] == "63016"
    assert posted.form["ErrorMessage"].startswith("Failed to send freeform message because you")


def test_reverse_shuffle_posts_read_first(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"shuffle": "reverse"})
    send(client, receiver.status_url(45))
    assert statuses(wait_for(receiver, 45, 3)) == ["read", "delivered", "sent"]


def test_random_shuffle_never_keeps_the_planned_order(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"shuffle": True})
    send(client, receiver.status_url(46))
    order = statuses(wait_for(receiver, 46, 3))
    assert sorted(order) == ["delivered", "read", "sent"]
    assert order != ["sent", "delivered", "read"]


def test_duplicate_mode_posts_every_callback_twice(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"duplicate": True})
    send(client, receiver.status_url(47))
    posts = wait_for(receiver, 47, 6)
    assert Counter(statuses(posts)) == {"sent": 2, "delivered": 2, "read": 2}
    wait_until(lambda: settled(emulator))
    assert emulator.stats().callbacks.sent == {"sent": 2, "delivered": 2, "read": 2}


def test_a_per_recipient_rule_changes_only_that_recipients_callbacks(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.set_callback_rule("+447700900999", CallbackRule(mode=CallbackMode.NO_READ))
    send(client, receiver.status_url(48), to="whatsapp:+447700900999")
    send(client, receiver.status_url(49))
    wait_for(receiver, 49, 3)
    wait_until(lambda: settled(emulator))
    assert statuses(receiver.for_mid(48)) == ["sent", "delivered"]
    assert emulator.config.to_json()["callback_rules"] == {"+447700900999": {"mode": "no_read"}}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_receiver_that_is_down_is_retried_then_counted_as_failed(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    sid = send(client, f"http://127.0.0.1:{closed_port()}/webhook/status?mid=50")
    wait_until(lambda: settled(emulator), message=lambda: str(emulator.stats().callbacks))
    stats = emulator.stats().callbacks
    assert (stats.failed, stats.retried, dict(stats.sent)) == (3, 6, {})
    assert {(c.sid, c.outcome, c.http_status, c.attempts) for c in emulator.callbacks()} == {
        (sid, Outcome.FAILED, None, 3)
    }
    send(client, receiver.status_url(51))  # the dispatcher carries on
    wait_for(receiver, 51, 3)


def test_5xx_is_retried_and_4xx_is_not(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"mode": "failed"})
    receiver.answer = 503
    send(client, receiver.status_url(52))
    wait_until(lambda: settled(emulator))
    assert len(receiver.for_mid(52)) == 3
    receiver.answer = 403
    send(client, receiver.status_url(53))
    wait_until(lambda: settled(emulator))
    assert len(receiver.for_mid(53)) == 1
    assert [(c.http_status, c.attempts) for c in emulator.callbacks()] == [(503, 3), (403, 1)]
    assert emulator.stats().callbacks.failed_by_status == {"failed": 2}


def test_documentation_hosts_and_messages_without_a_callback_url_get_none(
    client: Client, emulator: EmulatorServer
) -> None:
    send(client, "https://hooks.example.com/webhook/status?mid=54")
    send(client, None)
    wait_until(lambda: settled(emulator))
    stats = emulator.stats().callbacks
    assert (stats.scheduled, stats.skipped, stats.failed) == (3, 3, 0)


def test_disabled_callbacks_schedule_nothing(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"enabled": False})
    send(client, receiver.status_url(55))
    assert emulator.stats().callbacks.scheduled == 0


def test_reset_drops_callbacks_not_posted_yet(
    client: Client, emulator: EmulatorServer, receiver: Receiver
) -> None:
    emulator.configure(callbacks={"delays": {"read": 60}})
    send(client, receiver.status_url(56))
    wait_for(receiver, 56, 2)
    emulator.reset()
    assert emulator.stats().callbacks.pending == 0
    emulator.configure(callbacks={"delays": {"read": 0.05}})
    send(client, receiver.status_url(57))
    wait_for(receiver, 57, 3)
    assert statuses(receiver.for_mid(56)) == ["sent", "delivered"]
