"""`post_inbound` and `twilio-emulator inbound`: one signed incoming WhatsApp message, as Twilio.

A stdlib receiver records the post; the CLI runs as a subprocess, like a developer would.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from notifier.twilio_emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, post_inbound
from tests.integration.test_twilio_emulator_callbacks import (
    Receiver,
    closed_port,
    signature_is_valid,
)

CUSTOMER = "+447700900123"
CLI = [sys.executable, "-m", "notifier.twilio_emulator.main"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def test_post_inbound_sends_twilios_whatsapp_fields_signed(receiver: Receiver) -> None:
    result = post_inbound(CUSTOMER, "STOP", webhook_url=f"{receiver.base}/webhook/inbound")
    assert result.ok and result.status == 200
    [posted] = receiver.received()
    form = posted.form
    assert posted.path == "/webhook/inbound"
    assert signature_is_valid(receiver, posted)
    assert form == result.params
    sid = form["MessageSid"]
    assert sid.startswith("SM") and len(sid) == 34
    assert form["SmsMessageSid"] == form["SmsSid"] == sid
    assert (form["From"], form["To"], form["WaId"]) == (
        f"whatsapp:{CUSTOMER}",
        "whatsapp:+14155238886",
        "447700900123",
    )
    assert (form["SmsStatus"], form["Body"], form["OptOutType"]) == ("received", "STOP", "STOP")
    assert (form["NumMedia"], form["NumSegments"], form["MessageType"]) == ("0", "1", "text")
    assert (form["AccountSid"], form["ApiVersion"]) == (DEFAULT_ACCOUNT_SID, "2010-04-01")
    assert form["ProfileName"]
    assert "ButtonPayload" not in form and "MessagingServiceSid" not in form


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (" stop ", "STOP"),
        ("Unsubscribe", "STOP"),
        ("stopall", "STOP"),
        ("QUIT", "STOP"),
        ("yes", "START"),
        ("UNSTOP", "START"),
        ("info", "HELP"),
        ("stop please", None),
        ("Where is my parcel?", None),
    ],
)
def test_only_a_whole_keyword_body_gets_an_opt_out_type(
    receiver: Receiver, body: str, expected: str | None
) -> None:
    post_inbound(CUSTOMER, body, webhook_url=receiver.base + "/webhook/inbound")
    [posted] = receiver.received()
    assert posted.form.get("OptOutType") == expected


def test_a_quick_reply_carries_its_button_and_messaging_service(receiver: Receiver) -> None:
    service = "MG" + "5678ef90" * 4
    post_inbound(
        CUSTOMER,
        "Reschedule",
        webhook_url=receiver.base + "/webhook/inbound",
        button_payload="RESCHEDULE_42",
        messaging_service_sid=service,
    )
    [posted] = receiver.received()
    form = posted.form
    assert (form["MessageType"], form["ButtonPayload"], form["ButtonText"]) == (
        "button",
        "RESCHEDULE_42",
        "Reschedule",
    )
    assert form["MessagingServiceSid"] == service
    assert signature_is_valid(receiver, posted)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TWILIO_AUTH_TOKEN": "", "PUBLIC_WEBHOOK_URL": "", **(env or {})},
    )


def test_the_inbound_cli_posts_prints_the_answer_and_exits_0(receiver: Receiver) -> None:
    url = receiver.base + "/webhook/inbound"
    done = run_cli("inbound", "--from", CUSTOMER, "--body", "STOP", "--webhook-url", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "200 OK"
    assert "<Response/>" in done.stdout
    [posted] = receiver.received()
    assert signature_is_valid(receiver, posted, DEFAULT_AUTH_TOKEN)
    assert (posted.form["OptOutType"], posted.form["From"]) == ("STOP", f"whatsapp:{CUSTOMER}")


def test_the_inbound_cli_signs_with_the_token_and_url_from_the_environment(
    receiver: Receiver,
) -> None:
    env = {"TWILIO_AUTH_TOKEN": "env-token", "PUBLIC_WEBHOOK_URL": receiver.base}
    done = run_cli("inbound", "--from", CUSTOMER, "--body", "START", env=env)
    assert done.returncode == 0, done.stderr
    [posted] = receiver.received()
    assert posted.path == "/webhook/inbound"
    assert signature_is_valid(receiver, posted, "env-token")
    assert posted.form["OptOutType"] == "START"


def test_the_inbound_cli_exits_1_on_an_error_answer_or_no_answer(receiver: Receiver) -> None:
    receiver.answer = 403
    url = receiver.base + "/webhook/inbound"
    refused = run_cli("inbound", "--from", CUSTOMER, "--body", "hi", "--webhook-url", url)
    assert (refused.returncode, refused.stdout.splitlines()[0]) == (1, "403 Forbidden")
    down = f"http://127.0.0.1:{closed_port()}/webhook/inbound"
    unreachable = run_cli("inbound", "--from", CUSTOMER, "--body", "hi", "--webhook-url", down)
    assert unreachable.returncode == 1
    assert "no answer from" in unreachable.stderr


def test_the_inbound_cli_rejects_a_number_that_is_not_e164() -> None:
    done = run_cli("inbound", "--from", "07700900123", "--body", "hi")
    assert done.returncode == 2
    assert "E.164" in done.stderr


def read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def test_the_explicit_serve_command_starts_the_server_with_callback_flags() -> None:
    flags = ["--port", "0", "--callback-mode", "no_read", "--callback-rule", f"{CUSTOMER}=failed"]
    process = subprocess.Popen(
        [*CLI, "serve", *flags, "--callback-delay", "sent=0.5"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""},
    )
    try:
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
        started = json.loads(lines.get(timeout=10))
        assert started["msg"] == "twilio emulator listening"
        assert started["auth_token"] == DEFAULT_AUTH_TOKEN
        callbacks = started["callbacks"]
        assert (callbacks["enabled"], callbacks["mode"], callbacks["delays"]["sent"]) == (
            True,
            "no_read",
            0.5,
        )
        assert started["callback_rules"] == {"+44********23": {"mode": "failed"}}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
