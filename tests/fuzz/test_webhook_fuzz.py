"""Bad input on the webhook: 10,000 generated requests through Flask's test client to the
app on a fake publisher: mutated and random Twilio callbacks, signed right and wrong,
every content type, huge bodies, wrong methods and paths.

Never a 5xx but 503 (and that only while the publisher fails), never a stack trace; 403
for a bad signature, 400/404/405/413 publish nothing, and 200 publishes exactly the one
event a valid callback makes (none for a status we do not track), which decodes.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from notifier.common.domain.messages import InboundMessage, StatusChange
from notifier.common.domain.status import from_twilio
from notifier.common.errors import TransientError
from notifier.common.payloads import decode_event
from notifier.webhook.app import create_app
from notifier.webhook.metrics import WebhookMetrics
from tests.fuzz.budget import CaseCount, fuzz_settings, fuzz_timeout
from tests.fuzz.webhook_inputs import (
    CLEAN_FORWARDED,
    FORM,
    ROUTES,
    Call,
    callbacks,
    forwarded_requests,
    huge_requests,
    random_requests,
    server_form,
)
from tests.integration.webhook.webhook_support import PUBLIC, FakePublisher, settings, signature

pytestmark = pytest.mark.fuzz

# Cases per test at FUZZ_EXAMPLES_SCALE=1: 10,000 requests in all.
BUDGET = {"callbacks": 6000, "random": 3000, "huge": 500, "forwarded": 500}
_FIELD_ERROR = re.compile(rb"^[A-Za-z]+: \S")
_PROBES = ("/healthz", "/readyz")
# Once in ten cases the publisher fails like a broker that does not acknowledge.
failing = st.integers(0, 9).map(lambda n: n == 7)


class Webhook:
    """The app on a fake publisher; `call` sends one drawn request on a clean publisher."""

    def __init__(self, public_url: str | None = PUBLIC, proxies: int = 0) -> None:
        self.settings = settings(public_url=public_url, proxies=proxies)
        self.publisher = FakePublisher()
        self.client: FlaskClient = create_app(
            self.settings, self.publisher, WebhookMetrics()
        ).test_client()

    def call(self, call: Call, fail: bool) -> TestResponse:
        self.publisher.records.clear()
        self.publisher.error = TransientError("Kafka did not acknowledge") if fail else None
        headers = dict(call.headers)
        kwargs: dict[str, Any] = {"query_string": call.query, "headers": headers}
        if call.chunked:
            # As gunicorn passes a chunked body: no length, the stream ends where it ends.
            # (The test client adds a Content-Length to any body unless told it is chunked.)
            headers["Transfer-Encoding"] = "chunked"
            kwargs["input_stream"] = io.BytesIO(call.body)
            kwargs["environ_overrides"] = {"wsgi.input_terminated": True}
        else:
            kwargs["data"] = call.body
        if call.content_type is not None:
            kwargs["content_type"] = call.content_type
        return self.client.open(call.path, method=call.method, **kwargs)


@pytest.fixture
def webhook() -> Webhook:
    return Webhook()


def judge(webhook: Webhook, call: Call, reply: TestResponse, fail: bool) -> None:
    """What the answer to `call` must be, and what must have been published."""
    code, body, records = reply.status_code, reply.get_data(), webhook.publisher.records
    where = f"{call.method} {call.path}?{call.query} -> {code} {body[:200]!r}"
    assert code < 500 or (code == 503 and fail), where
    assert b"Traceback" not in body and b"<html" not in body.lower(), where
    assert len(body) < 1000, where
    if code != 200:
        assert records == [], where
    if call.route is None:
        assert code == _not_a_callback(call), where
        return
    if len(call.body) > webhook.settings.max_body_bytes:
        if call.chunked and not _is_form(call):
            # A chunked body that is no form is never read, so its size is never known.
            assert code in (400, 403, 413), where
        else:
            assert code == 413, where
        return
    if not call.signed_right:
        assert (code, body) == (403, b""), where
        return
    if not _is_form(call):
        assert code == 400 and body.startswith(b"Content-Type must be"), where
        return
    if call.kind is not None and not call.harmful:
        _judge_valid_callback(call, reply, fail, len(records), where)
    else:
        assert code in (200, 400) or (code == 503 and fail), where
        assert code != 400 or _FIELD_ERROR.match(body), where
    if code == 503:
        assert reply.headers["Retry-After"], where
    if code == 200:
        assert len(records) <= 1, where
        for key, value in records:
            check_event(call, key, value)


def _is_form(call: Call) -> bool:
    return (call.content_type or "").split(";", 1)[0].strip().lower() == FORM


def _not_a_callback(call: Call) -> int:
    if call.path in ROUTES:
        return 200 if call.method == "OPTIONS" else 405
    if call.path in _PROBES:
        return 200 if call.method in ("GET", "HEAD", "OPTIONS") else 405
    return 404


def _judge_valid_callback(
    call: Call, reply: TestResponse, fail: bool, published: int, where: str
) -> None:
    """A callback whose fields were only added to or left alone, signed right: 200 with
    its one event, none for an untracked status, or 503 when the event cannot be stored."""
    form = dict(reversed(call.pairs))  # the first value of each field
    tracked = call.kind == "inbound" or from_twilio(_status_of(form)) is not None
    if tracked and fail:
        assert reply.status_code == 503, where
        return
    assert reply.status_code == 200, where
    assert published == (1 if tracked else 0), where
    if call.kind == "inbound":
        assert reply.mimetype == "text/xml" and b"<Response>" in reply.get_data(), where


def _status_of(form: Mapping[str, str]) -> str:
    """The status Twilio reported: MessageStatus, or its older twin SmsStatus."""
    return form.get("MessageStatus", "").strip() or form.get("SmsStatus", "").strip()


def check_event(call: Call, key: str, value: bytes) -> None:
    """The published event decodes and says what the callback said."""
    form = server_form(call.body, call.content_type)
    event = decode_event(value)
    # The path says what a callback is; on POST /webhook its fields do, unless mutated.
    kind = {"/webhook/status": "status", "/webhook/inbound": "inbound"}.get(call.path)
    kind = kind or (None if call.harmful else call.kind)
    if isinstance(event, StatusChange):
        assert kind in (None, "status")
        sid = form.get("MessageSid", "").strip()
        assert event.twilio_sid == sid
        assert event.status == from_twilio(_status_of(form))
        mid = parse_qs(call.query).get("mid")
        assert event.message_id == (int(mid[0]) if mid else None)
        assert key == (str(event.message_id) if event.message_id is not None else sid)
    else:
        assert isinstance(event, InboundMessage)
        assert kind in (None, "inbound")
        assert event.twilio_sid == form.get("MessageSid", "").strip()
        assert key == event.from_number and event.from_number.startswith("+")


@fuzz_timeout(90)
def test_mutated_twilio_callbacks_get_the_right_answer_and_publish_accordingly(
    webhook: Webhook,
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["callbacks"])
    @given(callbacks(), failing)
    def case(call: Call, fail: bool) -> None:
        cases.tick()
        judge(webhook, call, webhook.call(call, fail), fail)

    case()
    cases.assert_at_least(BUDGET["callbacks"])


@fuzz_timeout(60)
def test_random_forms_bytes_methods_and_paths_never_get_a_server_error(
    webhook: Webhook,
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["random"])
    @given(random_requests(), failing)
    def case(call: Call, fail: bool) -> None:
        cases.tick()
        judge(webhook, call, webhook.call(call, fail), fail)

    case()
    cases.assert_at_least(BUDGET["random"])


@fuzz_timeout(60)
def test_a_body_over_the_limit_is_413_whatever_else_is_wrong(webhook: Webhook) -> None:
    """Refused before the signature is checked. A chunked body that is not a form is the
    exception: it is never read (so never measured) and gets 403 or 400 instead."""
    cases = CaseCount()

    @fuzz_settings(BUDGET["huge"])
    @given(huge_requests(webhook.settings.max_body_bytes), failing)
    def case(call: Call, fail: bool) -> None:
        cases.tick()
        judge(webhook, call, webhook.call(call, fail), fail)

    case()
    cases.assert_at_least(BUDGET["huge"])


@fuzz_timeout(60)
def test_host_and_forwarded_headers_of_any_shape_never_get_a_server_error() -> None:
    """Without PUBLIC_WEBHOOK_URL the signed URL comes from the request (and, behind a
    trusted proxy, its X-Forwarded-* headers), so those headers are input too."""
    cases = CaseCount()
    hooks = {proxies: Webhook(public_url=None, proxies=proxies) for proxies in (0, 1)}

    @fuzz_settings(BUDGET["forwarded"])
    @given(forwarded_requests(), failing)
    def case(drawn: tuple[Call, int], fail: bool) -> None:
        call, proxies = drawn
        cases.tick()
        webhook = hooks[proxies]
        reply = webhook.call(call, fail)
        code = reply.status_code
        where = f"{proxies} proxies, {call.headers} -> {code} {reply.data[:200]!r}"
        if call.signed_right:
            judge(webhook, call, reply, fail)
            return
        assert code in (200, 403) or (code == 503 and fail), where
        if code == 403:
            assert webhook.publisher.records == [], where
        else:  # garbled headers that still spell the URL Twilio signed
            judge(webhook, dataclasses.replace(call, signed_right=True), reply, fail)

    case()
    cases.assert_at_least(BUDGET["forwarded"])


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-Prefix": "a:b"},
        # https://hooks.example.com:80 + "000": port 80000
        {**CLEAN_FORWARDED, "X-Forwarded-Port": "80", "X-Forwarded-Prefix": "000"},
    ],
    ids=["colon-in-prefix", "prefix-extends-the-port"],
)
def test_a_forwarded_prefix_that_is_no_path_is_refused(forwarded: dict[str, str]) -> None:
    webhook = Webhook(public_url=None, proxies=1)
    call = Call(
        "POST",
        "/webhook/status",
        "",
        b"MessageSid=SM00000000000000000000000000000000&MessageStatus=sent",
        FORM,
        {"X-Twilio-Signature": "not-a-signature", **forwarded},
        signed_right=False,
        harmful=False,
    )
    assert webhook.call(call, fail=False).status_code == 403


def test_a_status_callback_without_message_status_is_not_taken_for_an_inbound_message(
    webhook: Webhook,
) -> None:
    pairs = [
        ("MessageSid", "SM" + "0" * 32),
        ("From", "whatsapp:+14155238886"),
        ("To", "whatsapp:+447700900123"),
        ("SmsStatus", "delivered"),
    ]
    body = urlencode(pairs).encode()
    headers = {"X-Twilio-Signature": signature(PUBLIC + "/webhook", MultiDict(pairs))}
    call = Call("POST", "/webhook", "", body, FORM, headers, signed_right=True, harmful=True)
    webhook.call(call, fail=False)
    events = [decode_event(value) for _, value in webhook.publisher.records]
    assert not any(isinstance(e, InboundMessage) for e in events), events
