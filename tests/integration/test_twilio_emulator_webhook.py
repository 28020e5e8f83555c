"""The emulator against the real webhook app: its callbacks and inbound posts are accepted (200).

Proves the fields and X-Twilio-Signature the emulator sends are what the webhook validates;
a fake publisher (the webhook's Publisher protocol) stands in for Kafka.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from twilio.rest import Client
from werkzeug.serving import make_server

from notifier.common.domain.status import MessageStatus
from notifier.common.payloads import decode_event
from notifier.common.pb import events_pb2
from notifier.twilio_emulator import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    CallbackMode,
    CallbackRule,
    EmulatorServer,
    Outcome,
    post_inbound,
)
from notifier.webhook.app import create_app
from notifier.webhook.metrics import WebhookMetrics
from tests.fixtures.waiting import wait_until
from tests.integration.test_twilio_emulator_callbacks import CONTENT_SID, FAST, SENDER
from tests.integration.webhook.webhook_support import FakePublisher, settings

CUSTOMER = "+447700900123"
UNLUCKY = "+447700900555"


@dataclass
class Webhook:
    base: str
    publisher: FakePublisher


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """The webhook's Flask app on a real socket, validating with the emulator's token."""
    config = dataclasses.replace(settings(public_url=None), twilio_auth_token=DEFAULT_AUTH_TOKEN)
    publisher = FakePublisher()
    server = make_server(
        "127.0.0.1", 0, create_app(config, publisher, WebhookMetrics()), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Webhook(f"http://127.0.0.1:{server.port}", publisher)
    finally:
        server.shutdown()
        thread.join(5)


def test_the_webhook_accepts_every_status_callback_the_emulator_sends(webhook: Webhook) -> None:
    rules = {UNLUCKY: CallbackRule(mode=CallbackMode.FAILED)}
    with EmulatorServer(callbacks=FAST, callback_rules=rules) as emulator:
        client = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
        client.api.base_url = emulator.url
        for mid, to in ((61, CUSTOMER), (62, UNLUCKY)):
            client.messages.create(
                to=f"whatsapp:{to}",
                from_=SENDER,
                content_sid=CONTENT_SID,
                status_callback=f"{webhook.base}/webhook/status?mid={mid}",
            )
        wait_until(
            lambda: emulator.stats().callbacks.pending == 0 and emulator.stats().callbacks.sent,
            message=lambda: str(emulator.stats().callbacks),
        )
        outcomes = {(c.outcome, c.http_status) for c in emulator.callbacks()}
    assert outcomes == {(Outcome.OK, 200)}
    changes = [(key, decode_event(value)) for key, value in webhook.publisher.records]
    by_key = {key: [c.status for k, c in changes if k == key] for key, _ in changes}
    assert by_key == {
        "61": [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ],
        "62": [MessageStatus.FAILED],
    }
    [failed] = [c for k, c in changes if k == "62"]
    assert failed.error_code == 63016
    assert failed.error_message is not None and "outside the allowed window" in failed.error_message


@pytest.mark.parametrize(
    ("body", "opt_out", "button"),
    [("STOP", "STOP", None), ("start", "START", None), ("Where is it?", "", "WHERE_IS_IT")],
)
def test_the_webhook_accepts_the_emulators_inbound_messages(
    webhook: Webhook, body: str, opt_out: str, button: str | None
) -> None:
    result = post_inbound(
        CUSTOMER, body, webhook_url=f"{webhook.base}/webhook/inbound", button_payload=button
    )
    assert result.status == 200, result.body
    [(key, value)] = webhook.publisher.records
    inbound = events_pb2.Event.FromString(value).inbound_message
    assert key == CUSTOMER
    assert (inbound.from_number, inbound.to_number, inbound.body) == (
        CUSTOMER,
        "+14155238886",
        body,
    )
    assert (inbound.opt_out_type, inbound.button_payload) == (opt_out, button or "")
    assert inbound.wa_id == CUSTOMER.removeprefix("+")
    assert inbound.twilio_sid == result.params["MessageSid"]


def test_a_wrong_token_is_refused_by_the_webhook(webhook: Webhook) -> None:
    result = post_inbound(
        CUSTOMER, "hi", webhook_url=f"{webhook.base}/webhook/inbound", auth_token="not-it"
    )
    assert result.status == 403
    assert webhook.publisher.records == []
