"""Webhook test helpers: a fake publisher, settings, callbacks signed as Twilio signs them."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from notifier.common.config import KafkaSettings, Topics
from notifier.common.errors import TransientError
from notifier.webhook.settings import WebhookSettings

TOKEN = "webhook-test-auth-token"
PUBLIC = "https://hooks.example.com"
SID = "SM" + "0123456789abcdef" * 2
CUSTOMER = "+447700900123"
OUR_NUMBER = "+14155238886"


class FakePublisher:
    """Implements routes.Publisher: keeps what was published; can fail like a down broker."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []
        self.error: Exception | None = None
        self.is_ready = True

    def publish(self, key: str, value: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.records.append((key, value))

    def ready(self) -> bool:
        return self.is_ready

    def fail_like_a_down_broker(self) -> None:
        self.error = TransientError("Kafka did not acknowledge within 5s")


def settings(
    public_url: str | None = PUBLIC,
    proxies: int = 0,
    bootstrap: str = "127.0.0.1:1",
    topic: str = "whatsapp.events.v1",
    timeout: float = 5.0,
) -> WebhookSettings:
    return WebhookSettings(
        kafka=KafkaSettings(bootstrap, Topics(events=topic)),
        twilio_auth_token=TOKEN,
        public_webhook_url=public_url,
        trusted_proxy_count=proxies,
        publish_timeout_seconds=timeout,
    )


def status_params(status: str = "delivered", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": SID,
        "SmsSid": SID,
        "AccountSid": "AC" + "1" * 32,
        "From": f"whatsapp:{OUR_NUMBER}",
        "To": f"whatsapp:{CUSTOMER}",
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def inbound_params(body: str = "STOP", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": SID,
        "AccountSid": "AC" + "1" * 32,
        "From": f"whatsapp:{CUSTOMER}",
        "To": f"whatsapp:{OUR_NUMBER}",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Ada",
        "WaId": CUSTOMER.lstrip("+"),
        "SmsStatus": "received",
        "OptOutType": "STOP",
        **extra,
    }


def signature(url: str, params: Mapping[str, str], token: str = TOKEN) -> str:
    """X-Twilio-Signature exactly as Twilio computes it: the SDK's own code."""
    return str(RequestValidator(token).compute_signature(url, params))


def post_signed(
    client: FlaskClient,
    path: str,
    params: Mapping[str, str],
    *,
    signed_url: str | None = None,
    token: str = TOKEN,
    sent_params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """POSTs `sent_params` (default `params`) form-encoded to `path`, signed over `params`
    for `signed_url` (default: PUBLIC + path)."""
    url = signed_url or PUBLIC + path
    return client.post(
        path,
        data=urlencode(sent_params if sent_params is not None else params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature(url, params, token), **(headers or {})},
    )
