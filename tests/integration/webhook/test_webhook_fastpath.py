"""The status fast path answers exactly as the Flask app would, and only the requests it
should: every request below goes to an app with the fast path and to one without it, and
the answers, the published events and the request metrics must match."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from notifier.common.domain.messages import Event, StatusChange
from notifier.common.payloads import decode_event
from notifier.webhook.app import create_app
from notifier.webhook.fastpath import StatusFastPath
from notifier.webhook.metrics import WebhookMetrics
from tests.integration.webhook.webhook_support import (
    PUBLIC,
    FakePublisher,
    inbound_params,
    settings,
    signature,
    status_params,
)

pytestmark = pytest.mark.integration

FORM = "application/x-www-form-urlencoded"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclasses.dataclass
class Setup:
    app: Flask
    publisher: FakePublisher
    metrics: WebhookMetrics
    flask_calls: int = 0


def _setup(fast: bool, max_body: int | None = None) -> Setup:
    publisher, metrics = FakePublisher(), WebhookMetrics()
    config = settings()
    if max_body is not None:
        config = dataclasses.replace(config, max_body_bytes=max_body)
    app = create_app(config, publisher, metrics)
    middleware = app.wsgi_app
    assert isinstance(middleware, StatusFastPath)
    setup = Setup(app, publisher, metrics)
    flask_app = middleware.app

    def counted(environ: object, start_response: object) -> Iterable[bytes]:
        setup.flask_calls += 1
        return flask_app(environ, start_response)  # type: ignore[arg-type]

    if fast:
        middleware.app = counted  # type: ignore[assignment]
    else:
        app.wsgi_app = counted  # type: ignore[method-assign,assignment]
    return setup


Request = Callable[[Setup], TestResponse]


def signed(path: str, params: dict[str, str], **overrides: str) -> Request:
    """A POST of `params` to `path`, signed over PUBLIC + path; `overrides` replace the
    body, the content type or the signature as sent."""

    def post(setup: Setup) -> TestResponse:
        sig = overrides.get("signature", signature(PUBLIC + path, params))
        return setup.app.test_client().post(
            path,
            data=overrides.get("body", urlencode(params)),
            content_type=overrides.get("content_type", FORM),
            headers={"X-Twilio-Signature": sig} if sig else {},
        )

    return post


def raw(path: str, body: bytes, params: dict[str, str]) -> Request:
    def post(setup: Setup) -> TestResponse:
        return setup.app.test_client().post(
            path, data=body, content_type=FORM,
            headers={"X-Twilio-Signature": signature(PUBLIC + path, params)},
        )  # fmt: skip

    return post


# Requests the fast path answers itself (the Flask app is never called).
FAST = {
    "delivered": signed("/webhook/status?mid=42", status_params()),
    "on /webhook": signed("/webhook?mid=7", status_params("read")),
    "without mid": signed("/webhook/status", status_params("sent")),
    "failed, with its error": signed(
        "/webhook/status?mid=42",
        status_params("failed", ErrorCode="63016", ErrorMessage='Zu spät ✓ & 100% "sure"'),
    ),
    "charset in the content type": signed(
        "/webhook/status?mid=1", status_params(), content_type=FORM + "; charset=utf-8"
    ),
    "a field Twilio added": signed("/webhook/status?mid=5", status_params(ChannelPrefix="wa")),
}
# Requests it leaves to the Flask app.
SLOW = {
    "bad signature": signed("/webhook/status?mid=42", status_params(), signature="bm9wZQ=="),
    "no signature": signed("/webhook/status?mid=42", status_params(), signature=""),
    "signed for other fields": signed(
        "/webhook/status?mid=42", status_params(), body=urlencode(status_params("read"))
    ),
    "wrong content type": signed(
        "/webhook/status?mid=42", status_params(), content_type="application/json"
    ),
    "inbound on /webhook": signed("/webhook", inbound_params("hello")),
    "inbound route": signed("/webhook/inbound", inbound_params("STOP")),
    "mid not a number": signed("/webhook/status?mid=abc", status_params()),
    "another query": signed("/webhook/status?mid=1&x=2", status_params()),
    "unknown status": signed("/webhook/status?mid=42", status_params("exploded")),
    "no MessageSid": signed("/webhook/status?mid=42", {"MessageStatus": "sent"}),
    "body not UTF-8": raw("/webhook/status?mid=42", b"MessageStatus=sent&X=\xff", {}),
    "neither status nor sender": signed("/webhook", {"MessageSid": "SM" + "a" * 32}),
}


def _timeless(event: Event) -> Event:
    """The event without the time the webhook received it (the two apps differ there)."""
    if isinstance(event, StatusChange):
        return dataclasses.replace(event, occurred_at=EPOCH)
    return dataclasses.replace(event, received_at=EPOCH)


def _outcome(setup: Setup, request: Request) -> tuple[object, ...]:
    reply = request(setup)
    events = [(key, _timeless(decode_event(value))) for key, value in setup.publisher.records]
    counts = {
        tuple(sorted(m.labels.items())): m.value
        for family in setup.metrics.registry.collect()
        for m in family.samples
        if m.name.endswith("_total")
    }
    return (reply.status_code, reply.data, reply.mimetype,
            reply.headers.get("Retry-After"), events, counts)  # fmt: skip


@pytest.mark.parametrize("name", [*FAST, *SLOW])
def test_the_answer_events_and_counts_are_the_flask_apps(name: str) -> None:
    request = FAST.get(name) or SLOW[name]
    fast, plain = _setup(fast=True), _setup(fast=False)
    assert _outcome(fast, request) == _outcome(plain, request)
    assert fast.flask_calls == (0 if name in FAST else 1)


def test_a_down_broker_is_answered_503_with_retry_after_on_the_fast_path() -> None:
    fast, plain = _setup(fast=True), _setup(fast=False)
    for setup in (fast, plain):
        setup.publisher.fail_like_a_down_broker()
    request = FAST["delivered"]
    outcome = _outcome(fast, request)
    assert outcome == _outcome(plain, request)
    assert outcome[0] == 503 and outcome[3] == "5"
    assert fast.flask_calls == 0


def test_a_body_over_the_limit_is_left_to_flask_and_refused_413() -> None:
    params = status_params(Padding="x" * 2_000)
    fast, plain = _setup(fast=True, max_body=1_024), _setup(fast=False, max_body=1_024)
    request = signed("/webhook/status?mid=42", params)
    outcome = _outcome(fast, request)
    assert outcome == _outcome(plain, request)
    assert outcome[0] == 413
    assert fast.flask_calls == 1 and not fast.publisher.records


def test_without_a_public_url_there_is_no_fast_path() -> None:
    app = create_app(settings(public_url=None), FakePublisher(), WebhookMetrics())
    assert not isinstance(app.wsgi_app, StatusFastPath)
