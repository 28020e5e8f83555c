"""The emulator's answers without sockets: auth, limits, faults, ledger and the control API."""

import base64
import json
import random
from collections.abc import Sequence
from itertools import pairwise
from urllib.parse import urlencode

import pytest

from notifier.twilio_emulator.app import CallOutcome, EmulatorApp, basic_credentials
from notifier.twilio_emulator.callback_plan import CallbackSettings, PlannedCallback
from notifier.twilio_emulator.config import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    ConfigError,
    EmulatorConfig,
)
from notifier.twilio_emulator.ledger import RecordedMessage
from notifier.twilio_emulator.reply import Reply

SENDER = "whatsapp:+14155238886"
CREATE_PATH = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(user: str = DEFAULT_ACCOUNT_SID, password: str = DEFAULT_AUTH_TOKEN) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def create_body(to: str = "whatsapp:+447700900123", mid: str | None = None, **extra: str) -> bytes:
    fields = {"To": to, "From": SENDER, "ContentSid": "HX" + "a" * 32, **extra}
    if mid is not None:
        fields["StatusCallback"] = f"https://hooks.example.com/webhook/status?mid={mid}"
    return urlencode(fields).encode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def calls() -> list[CallOutcome]:
    return []


@pytest.fixture
def app(clock: FakeClock, calls: list[CallOutcome]) -> EmulatorApp:
    return EmulatorApp(EmulatorConfig(), clock=clock, wall_clock=clock, on_call=calls.append)


def create(app: EmulatorApp, body: bytes | None = None, auth: str | None = None) -> Reply:
    return app.handle("POST", CREATE_PATH, body or create_body(), auth or basic())


def payload(reply: Reply) -> dict[str, object]:
    assert isinstance(reply.payload, dict)
    return reply.payload


def test_create_answers_201_with_a_message_resource_and_records_it(app: EmulatorApp) -> None:
    reply = create(app, create_body(mid="7"))
    body = payload(reply)
    assert reply.status == 201
    assert str(body["sid"]).startswith("SM") and len(str(body["sid"])) == 34
    assert body["status"] == "queued"
    assert body["date_created"] == "Thu, 01 Jan 1970 00:16:40 +0000"
    [recorded] = app.ledger.messages()
    assert (recorded.sid, recorded.mid) == (body["sid"], "7")


def test_wrong_password_gets_401_with_20003_and_a_challenge(app: EmulatorApp) -> None:
    reply = create(app, auth=basic(password="nope"))
    assert (reply.status, payload(reply)["code"]) == (401, 20003)
    assert "WWW-Authenticate" in reply.headers
    assert app.ledger.messages() == []


def test_another_accounts_url_is_not_found_even_with_valid_credentials(app: EmulatorApp) -> None:
    other = "AC" + "f" * 32
    reply = app.handle(
        "POST", f"/2010-04-01/Accounts/{other}/Messages.json", create_body(), basic()
    )
    assert (reply.status, payload(reply)["code"]) == (404, 20404)


def test_calls_beyond_mps_get_429_until_the_window_moves(
    app: EmulatorApp, clock: FakeClock
) -> None:
    app.configure({"mps": 2})
    statuses = [create(app).status for _ in range(3)]
    assert statuses == [201, 201, 429]
    clock.now += 1.0
    assert create(app).status == 201
    stats = app.ledger.stats()
    assert (stats.accepted, stats.throttled, stats.rejected_by_code) == (3, 1, {20429: 1})
    assert stats.senders[SENDER].peak_per_second == 2


def test_arrival_times_are_the_instants_the_rate_window_counted(clock: FakeClock) -> None:
    # The wall clock is read 50 ms late once (a thread switch just before the read).
    lateness = iter([0.05] + [0.0] * 10)
    app = EmulatorApp(
        EmulatorConfig(mps=3), clock=clock, wall_clock=lambda: clock.now + next(lateness)
    )
    for _ in range(4):  # 3 in any 1.02 s: all admitted
        assert create(app).status == 201
        clock.now += 0.34
    arrivals = [m.arrived_at for m in app.ledger.messages()]
    gaps = [round(b - a, 9) for a, b in pairwise(arrivals)]
    assert gaps == [0.34, 0.34, 0.34]
    # So no one-second window recomputed from the record holds more than the limiter let in.
    assert max(sum(1 for t in arrivals if end - 1.0 < t <= end) for end in arrivals) == 3


def test_throttled_answer_carries_retry_after(app: EmulatorApp, clock: FakeClock) -> None:
    app.configure({"mps": 1})
    create(app)
    clock.now += 0.25
    reply = create(app)
    assert (reply.status, payload(reply)["code"]) == (429, 20429)
    assert reply.headers["Retry-After"] == "1"


def test_same_mid_accepted_twice_counts_one_duplicate(app: EmulatorApp) -> None:
    for mid in ("1", "2", "1", "1"):
        create(app, create_body(mid=mid))
    stats = app.ledger.stats()
    assert (stats.accepted, stats.duplicates, dict(stats.duplicate_mids)) == (4, 2, {"1": 3})


def test_fail_next_rules_are_used_once_each_in_order(app: EmulatorApp) -> None:
    app.configure({"fail_next": [{"status": 500, "code": 20500}, {"status": 503}]})
    statuses = [(r.status, payload(r).get("code")) for r in (create(app) for _ in range(3))]
    assert statuses == [(500, 20500), (503, 20503), (201, None)]


def test_delay_only_rule_accepts_after_the_extra_delay(app: EmulatorApp) -> None:
    app.configure({"latency_ms": 100, "fail_next": [{"delay_ms": 2000}]})
    reply = create(app)
    assert reply.status == 201
    assert reply.delay == pytest.approx(2.1)
    assert create(app).delay == pytest.approx(0.1)


def test_fail_to_rule_applies_to_every_call_to_that_number(app: EmulatorApp) -> None:
    app.configure({"fail_to": {"+447700900999": {"status": 400, "code": 63024}}})
    body = create_body(to="whatsapp:+447700900999")
    assert [payload(create(app, body))["code"] for _ in range(2)] == [63024, 63024]
    assert create(app).status == 201
    app.configure({"fail_to": {"+447700900999": None}})
    assert create(app, body).status == 201


def test_jitter_adds_up_to_its_bound(clock: FakeClock) -> None:
    config = EmulatorConfig(latency_ms=50, jitter_ms=20)
    app = EmulatorApp(config, clock=clock, rng=random.Random(1))
    delays = [create(app).delay for _ in range(50)]
    assert all(0.05 <= d <= 0.07 for d in delays)
    assert len(set(delays)) > 1


def test_every_create_call_is_reported_for_the_log(
    app: EmulatorApp, calls: list[CallOutcome]
) -> None:
    create(app, create_body(mid="5"))
    create(app, create_body(to="whatsapp:+15005550004"))
    assert [(c.accepted, c.status, c.code, c.mid) for c in calls] == [
        (True, 201, None, "5"),
        (False, 400, 21610, None),
    ]


def test_fetch_returns_the_recorded_message_or_20404(app: EmulatorApp) -> None:
    sid = payload(create(app))["sid"]
    path = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{sid}.json"
    assert payload(app.handle("GET", path, b"", basic()))["sid"] == sid
    missing = app.handle("GET", path.replace(str(sid), "SM" + "0" * 32), b"", basic())
    assert (missing.status, payload(missing)["code"]) == (404, 20404)


def test_control_api_lists_messages_and_stats_and_resets(app: EmulatorApp) -> None:
    create(app, create_body(mid="3", ContentVariables='{"1": "x"}'))
    messages = app.handle("GET", "/_emulator/messages", b"", None).payload
    assert isinstance(messages, list)
    [listed] = messages
    assert listed["content_variables"] == {"1": "x"}
    assert listed["from"] == SENDER
    assert payload(app.handle("GET", "/_emulator/stats", b"", None))["accepted"] == 1
    app.handle("POST", "/_emulator/reset", b"", None)
    assert payload(app.handle("GET", "/_emulator/stats", b"", None))["accepted"] == 0


def test_control_config_rejects_unknown_keys_and_bad_values(app: EmulatorApp) -> None:
    for body in ({"mpss": 3}, {"mps": -1}, {"fail_next": [{"status": 200}]}, {"mps": "9"}):
        reply = app.handle("POST", "/_emulator/config", json.dumps(body).encode(), None)
        assert reply.status == 400, body
    assert app.config.mps == 0
    ok = app.handle("POST", "/_emulator/config", b'{"mps": 80, "latency_ms": 250}', None)
    assert (payload(ok)["mps"], payload(ok)["latency_ms"]) == (80, 250)
    assert "auth_token" not in payload(ok)


def test_unknown_routes_get_twilios_404(app: EmulatorApp) -> None:
    reply = app.handle("GET", "/2010-04-01/Accounts/x/Calls.json", b"", basic())
    assert (reply.status, payload(reply)["code"]) == (404, 20404)


def test_basic_credentials_parsing() -> None:
    assert basic_credentials(basic("u", "p:q")) == ("u", "p:q")
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials(None) is None


def test_config_refuses_a_malformed_account_sid() -> None:
    with pytest.raises(ConfigError, match="account_sid"):
        EmulatorConfig(account_sid="AC123")
    assert len(DEFAULT_ACCOUNT_SID) == 34


class FakeSink:
    """Implements app.CallbackSink: keeps what would have been posted."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[RecordedMessage, list[str], float, str]] = []
        self.cancelled = 0

    def schedule(
        self,
        message: RecordedMessage,
        plan: Sequence[PlannedCallback],
        settings: CallbackSettings,
        auth_token: str,
        after: float = 0.0,
    ) -> None:
        self.scheduled.append((message, [p.status for p in plan], after, auth_token))

    def cancel_all(self) -> None:
        self.cancelled += 1


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def with_sink(clock: FakeClock, sink: FakeSink) -> EmulatorApp:
    return EmulatorApp(EmulatorConfig(latency_ms=40), clock=clock, wall_clock=clock, callbacks=sink)


def test_an_accepted_message_gets_its_callbacks_planned_after_the_answer(
    with_sink: EmulatorApp, sink: FakeSink
) -> None:
    create(with_sink, create_body(mid="8"))
    [(message, statuses, after, token)] = sink.scheduled
    assert (message.mid, statuses, token) == (
        "8",
        ["sent", "delivered", "read"],
        DEFAULT_AUTH_TOKEN,
    )
    assert after == pytest.approx(0.04)


def test_no_callbacks_without_a_url_for_a_rejected_call_or_when_disabled(
    with_sink: EmulatorApp, sink: FakeSink
) -> None:
    create(with_sink, create_body())
    create(with_sink, create_body(to="whatsapp:+15005550004", mid="1"))
    with_sink.configure({"callbacks": {"enabled": False}})
    create(with_sink, create_body(mid="2"))
    assert sink.scheduled == []


def test_a_callback_rule_for_the_recipient_shapes_its_plan(
    with_sink: EmulatorApp, sink: FakeSink
) -> None:
    with_sink.configure({"callback_rules": {"+447700900123": {"mode": "undelivered"}}})
    create(with_sink, create_body(mid="3"))
    create(with_sink, create_body(to="whatsapp:+447700900999", mid="4"))
    assert [statuses for _, statuses, _, _ in sink.scheduled] == [
        ["sent", "undelivered"],
        ["sent", "delivered", "read"],
    ]


def test_reset_cancels_pending_callbacks_and_the_control_api_lists_them(
    with_sink: EmulatorApp, sink: FakeSink
) -> None:
    with_sink.handle("POST", "/_emulator/reset", b"", None)
    assert sink.cancelled == 1
    assert with_sink.handle("GET", "/_emulator/callbacks", b"", None).payload == []
    stats = payload(with_sink.handle("GET", "/_emulator/stats", b"", None))
    assert stats["callbacks"] == {
        "scheduled": 0,
        "sent": {},
        "failed": 0,
        "failed_by_status": {},
        "retried": 0,
        "skipped": 0,
        "pending": 0,
    }
