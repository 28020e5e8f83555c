"""An end-to-end run's logs, grepped: no full phone number, secret or message text, and every
line a JSON object with ts, level, service and msg. Each process connects as its own role."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import pytest

from notifier.common.migrate import apply_migrations
from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.twilio_emulator import post_inbound
from tests.fixtures.postgres import MIGRATIONS_DIR, created_database
from tests.fixtures.roles import login_user
from tests.fixtures.stack import WHATSAPP_FROM, Stack, StackOptions, run_stack
from tests.fixtures.waiting import random_suffix, wait_until

pytestmark = pytest.mark.e2e

PROCESSES = ("gateway", "sender", "recorder", "webhook")
ROLES = {"gateway": "notifier_gateway", "sender": "notifier_sender",
         "recorder": "notifier_recorder"}  # fmt: skip
INVALID_NUMBER = "+15005550001"  # Twilio's magic test number: 21211, not a valid number


def new_number() -> str:
    return "+4477" + "".join(secrets.choice("0123456789") for _ in range(9))


@contextmanager
def logged_stack(
    pg_server_url: str, kafka_bootstrap: str, log_dir: Path, passwords: dict[str, str]
) -> Iterator[Stack]:
    """A stack whose processes log to `log_dir`, each connecting as a LOGIN user of its
    role (with a password); stopped, logs complete, when the block ends."""
    with created_database(pg_server_url) as owner_url, ExitStack() as cleanup:
        apply_migrations(owner_url, MIGRATIONS_DIR)
        process_env = {
            name: {"DATABASE_URL": cleanup.enter_context(
                login_user(owner_url, role, passwords[name])
            )}
            for name, role in ROLES.items()
        }  # fmt: skip
        options = StackOptions(log_dir=log_dir, process_env=process_env,
                               extra_env={"LOG_LEVEL": "DEBUG"})  # fmt: skip
        yield from run_stack(owner_url, kafka_bootstrap, options)


def test_no_number_secret_or_text_reaches_the_logs(
    pg_server_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    passwords = {name: f"pw-{secrets.token_hex(12)}" for name in ROLES}
    recipients = [new_number() for _ in range(3)]
    customer = new_number()
    bad_number = "+4477009001234567"  # 16 digits: refused by the gateway
    secret_text = f"my door code is {random_suffix()}"
    tracking_id = f"TRK-{random_suffix()}"

    with logged_stack(pg_server_url, kafka_bootstrap, tmp_path, passwords) as stack:
        auth_token = stack.emulator.config.auth_token
        with grpc.insecure_channel(stack.grpc_target) as channel:
            stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
            ids = [send(stub, phone, tracking_id) for phone in recipients]
            failing = send(stub, INVALID_NUMBER, tracking_id)
            with pytest.raises(grpc.RpcError) as refused:
                send(stub, bad_number, tracking_id)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply = post_inbound(customer, secret_text, to=WHATSAPP_FROM, auth_token=auth_token,
                             webhook_url=f"{stack.webhook_url}/webhook/inbound",
                             account_sid=stack.emulator.config.account_sid)  # fmt: skip
        assert reply.ok, reply

        wait_until(lambda: all(stack.status_of(i) == "READ" for i in ids), timeout=30,
                   message="the messages READ through the webhook")  # fmt: skip
        wait_until(lambda: stack.status_of(failing) == "FAILED", timeout=30,
                   message="the message to an invalid number FAILED")  # fmt: skip
        wait_until(lambda: stack.query("SELECT 1 FROM inbound_messages WHERE phone_number = %s",
                                       customer), timeout=30,
                   message="the reply recorded")  # fmt: skip

    # Read after the stop, so the shutdown lines are in too.
    logs = {name: stack.log_path(name).read_text() for name in PROCESSES}
    forbidden = {
        **{f"number {n}": n.removeprefix("+") for n in [*recipients, customer, bad_number]},
        f"number {INVALID_NUMBER}": INVALID_NUMBER.removeprefix("+"),
        f"number {WHATSAPP_FROM}": WHATSAPP_FROM.removeprefix("+"),
        "the Twilio auth token": auth_token,
        **{f"the {name}'s database password": pw for name, pw in passwords.items()},
        "the inbound message's text": secret_text,
        "a template parameter value": tracking_id,
    }
    leaks = [
        f"{what} in the {name} log"
        for name, text in logs.items()
        for what, needle in forbidden.items()
        if needle in text
    ]
    assert not leaks, leaks
    for name, text in logs.items():
        assert text.strip(), f"the {name} log is empty"
        for number, line in enumerate(text.splitlines(), 1):
            assert is_log_entry(line, name), f"{name}.log line {number} is not a log entry: {line}"


def send(stub: whatsapp_pb2_grpc.WhatsAppServiceStub, phone: str, tracking_id: str) -> int:
    reply = stub.SendTemplateMessage(
        whatsapp_pb2.SendTemplateMessageRequest(
            phone_number=phone,
            template_id="shipment_dispatched",
            parameters={
                "order_id": "ORD-LOG-1",
                "tracking_id": tracking_id,
                "estimated_delivery": "Friday",
            },
            order_id="ORD-LOG-1",
        ),
        timeout=10,
    )
    return int(reply.message_id)


def is_log_entry(line: str, service: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return (
        isinstance(entry, dict)
        and {"ts", "level", "service", "msg"} <= entry.keys()
        and entry["service"] == service
    )
