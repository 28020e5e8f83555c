"""A message's status at the emulator follows its callback plan by due time, whether or not
any callback reached a webhook; a fetch answers that status with its error."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from notifier.twilio_emulator.app import EmulatorApp
from notifier.twilio_emulator.callback_plan import PlannedCallback
from notifier.twilio_emulator.catalog import UNKNOWN_ERROR
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, EmulatorConfig
from notifier.twilio_emulator.lifecycle import Step, Timeline, timeline

ACCOUNT = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}"
AUTH = "Basic " + base64.b64encode(f"{DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plan(*steps: tuple[str, float]) -> list[PlannedCallback]:
    return [PlannedCallback(status, delay) for status, delay in steps]


def test_the_status_is_the_initial_one_until_the_first_step_is_due() -> None:
    line = timeline("queued", plan(("sent", 0.2), ("delivered", 1.0), ("read", 3.0)), 10.0)
    assert [line.status_at(t).status for t in (9.0, 10.1, 10.2, 10.99, 11.0, 12.9, 13.0, 99)] == [
        "queued", "queued", "sent", "sent", "delivered", "delivered", "read", "read",
    ]  # fmt: skip


def test_a_shuffled_plan_still_means_the_furthest_status_reached() -> None:
    line = timeline("queued", plan(("read", 0.2), ("delivered", 1.0), ("sent", 3.0)), 0.0)
    assert [line.status_at(t).status for t in (0.5, 2.0, 5.0)] == ["read", "read", "read"]


def test_a_final_status_carries_its_error_and_nothing_moves_past_it() -> None:
    undelivered = PlannedCallback("undelivered", 1.0, UNKNOWN_ERROR)
    line = Timeline("queued", (Step(0.2, "sent"), Step(1.0, "undelivered", UNKNOWN_ERROR),
                               Step(2.0, "read")))  # fmt: skip
    assert line.status_at(5.0) == Step(1.0, "undelivered", UNKNOWN_ERROR)
    assert timeline("accepted", [undelivered], 0.0).status_at(0.5).status == "accepted"


def test_duplicated_callbacks_change_nothing() -> None:
    line = timeline("queued", plan(("sent", 0.2), ("sent", 0.2), ("delivered", 1.0)), 0.0)
    assert line.status_at(0.5).status == "sent"


def make_app(clock: Clock, **callbacks: object) -> EmulatorApp:
    app = EmulatorApp(EmulatorConfig(), clock=clock, wall_clock=clock)
    if callbacks:
        app.configure({"callbacks": callbacks})
    return app


def send(app: EmulatorApp, to: str = "whatsapp:+447700900123") -> str:
    body = urlencode({
        "To": to, "From": "whatsapp:+14155238886", "ContentSid": "HX" + "a" * 32,
        "StatusCallback": "http://127.0.0.1:9/webhook/status?mid=7",
    }).encode()  # fmt: skip
    reply = app.handle("POST", f"{ACCOUNT}/Messages.json", body, AUTH)
    assert isinstance(reply.payload, dict)
    return str(reply.payload["sid"])


def fetch(app: EmulatorApp, sid: str) -> dict[str, object]:
    reply = app.handle("GET", f"{ACCOUNT}/Messages/{sid}.json", b"", AUTH)
    assert reply.status == 200 and isinstance(reply.payload, dict)
    return reply.payload


def test_a_fetch_tells_the_truth_even_when_no_callback_is_ever_posted() -> None:
    clock = Clock()
    app = make_app(clock, enabled=False, speed=10)  # sent 0.02 s, delivered 0.1 s, read 0.3 s
    sid = send(app)
    seen = []
    for step in (0.0, 0.05, 0.2, 0.5):
        clock.now = 100.0 + step
        seen.append(fetch(app, sid)["status"])
    assert seen == ["queued", "sent", "delivered", "read"]
    assert app.ledger.callbacks.stats().scheduled == 0


def test_a_fetch_of_an_undelivered_message_carries_twilios_error() -> None:
    clock = Clock()
    app = make_app(clock, mode="undelivered")
    sid = send(app)
    clock.now += 5
    body = fetch(app, sid)
    assert (body["status"], body["error_code"], body["error_message"]) == (
        "undelivered", 30008, "Unknown error",
    )  # fmt: skip


def test_mode_none_leaves_the_message_where_twilio_took_it() -> None:
    clock = Clock()
    app = make_app(clock, mode="none")
    sid = send(app)
    clock.now += 3600
    assert fetch(app, sid)["status"] == "queued"


def test_refused_calls_are_counted_by_mid() -> None:
    app = make_app(Clock())
    body = urlencode({
        "To": "whatsapp:+15005550001", "From": "whatsapp:+14155238886",
        "ContentSid": "HX" + "a" * 32, "StatusCallback": "http://127.0.0.1:9/s?mid=12",
    }).encode()  # fmt: skip
    assert app.handle("POST", f"{ACCOUNT}/Messages.json", body, AUTH).status == 400
    stats = app.ledger.stats()
    assert (stats.accepted, dict(stats.rejected_mids)) == (0, {"12": 1})
