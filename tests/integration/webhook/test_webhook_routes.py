"""The webhook's HTTP contract on Flask's test client, with signatures computed by Twilio's SDK.

A fake publisher stands in for Kafka here; test_webhook_kafka.py uses the real one.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from notifier.common.domain.status import MessageStatus
from notifier.common.logging import JsonFormatter
from notifier.common.payloads import decode_event
from notifier.common.pb import events_pb2
from notifier.webhook.app import create_app
from notifier.webhook.metrics import WebhookMetrics
from tests.integration.webhook.webhook_support import (
    CUSTOMER,
    OUR_NUMBER,
    PUBLIC,
    SID,
    FakePublisher,
    inbound_params,
    post_signed,
    settings,
    signature,
    status_params,
)

STATUS = "/webhook/status?mid=42"


def test_a_signed_status_callback_is_published_keyed_by_message_id(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    reply = post_signed(client, STATUS, status_params("read"))
    assert reply.status_code == 200
    [(key, value)] = publisher.records
    change = decode_event(value)
    assert key == "42"
    assert (change.message_id, change.twilio_sid, change.status) == (42, SID, MessageStatus.READ)


def test_a_callback_without_mid_is_keyed_by_its_sid(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    assert post_signed(client, "/webhook/status", status_params()).status_code == 200
    [(key, value)] = publisher.records
    assert key == SID
    assert decode_event(value).message_id is None


def test_a_signed_inbound_message_is_published_keyed_by_the_customer(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    reply = post_signed(client, "/webhook/inbound", inbound_params())
    assert reply.status_code == 200
    assert reply.mimetype == "text/xml"  # empty TwiML: no automatic reply
    [(key, value)] = publisher.records
    inbound = events_pb2.Event.FromString(value).inbound_message
    assert key == CUSTOMER
    assert (inbound.from_number, inbound.to_number, inbound.opt_out_type) == (
        CUSTOMER,
        OUR_NUMBER,
        "STOP",
    )


@pytest.mark.parametrize(
    ("params", "kind"),
    [(status_params(), "status_callback"), (inbound_params(), "inbound_message")],
)
def test_the_seed_path_tells_callbacks_from_inbound_messages(
    client: FlaskClient, publisher: FakePublisher, params: dict[str, str], kind: str
) -> None:
    assert post_signed(client, "/webhook", params).status_code == 200
    [(_, value)] = publisher.records
    assert events_pb2.Event.FromString(value).WhichOneof("payload") == kind


def test_parameters_twilio_adds_are_signed_over_and_accepted(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    params = status_params(ChannelPrefix="whatsapp", BrandNewParameter2031="x", Ünïcode="é ✓")
    assert post_signed(client, STATUS, params).status_code == 200
    assert len(publisher.records) == 1


def test_a_repeated_parameter_is_signed_with_each_value(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    pairs = [*status_params().items(), ("MediaUrl", "https://a"), ("MediaUrl", "https://b")]
    body = urlencode(pairs)
    # Twilio's algorithm: the URL, then each name followed by each of its values, sorted.
    sig = signature(PUBLIC + STATUS, MultiDict(pairs))
    reply = client.post(
        STATUS,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sig},
    )
    assert reply.status_code == 200


REJECTED = {
    "unsigned": {"headers": {"X-Twilio-Signature": ""}},
    "wrong token": {"token": "someone-elses-token"},
    "body changed after signing": {"sent_params": status_params("failed")},
    "parameter added after signing": {"sent_params": status_params(Extra="1")},
    "wrong host": {"signed_url": "https://evil.example.com" + STATUS},
    "wrong scheme": {"signed_url": "http://hooks.example.com" + STATUS},
    "other message id": {"signed_url": PUBLIC + "/webhook/status?mid=43"},
    "other path": {"signed_url": PUBLIC + "/webhook/inbound?mid=42"},
}


@pytest.mark.parametrize("case", REJECTED.values(), ids=REJECTED.keys())
def test_a_badly_signed_callback_is_refused_and_nothing_is_published(
    client: FlaskClient,
    publisher: FakePublisher,
    metrics: WebhookMetrics,
    case: dict[str, object],
) -> None:
    reply = post_signed(client, STATUS, status_params(), **case)  # type: ignore[arg-type]
    assert reply.status_code == 403
    assert reply.data == b""
    assert publisher.records == []
    assert metrics.registry.get_sample_value("notifier_webhook_signature_failures_total") == 1


def test_a_request_without_the_signature_header_is_refused(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    reply = client.post(STATUS, data=status_params())
    assert reply.status_code == 403
    assert publisher.records == []


def test_a_body_over_the_limit_is_refused_with_413(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    params = status_params(Padding="x" * (64 * 1024))
    reply = post_signed(client, STATUS, params)
    assert reply.status_code == 413
    assert b"Traceback" not in reply.data
    assert publisher.records == []


def chunked_post(client: FlaskClient, params: dict[str, str]) -> int:
    """POSTs without Content-Length, as a chunked body reaches the app under gunicorn."""
    return client.post(
        STATUS,
        input_stream=io.BytesIO(urlencode(params).encode()),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature(PUBLIC + STATUS, params)},
        environ_overrides={"wsgi.input_terminated": True},
    ).status_code


def test_a_chunked_body_over_the_limit_is_refused_with_413(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    assert chunked_post(client, status_params(Padding="x" * (64 * 1024))) == 413
    assert publisher.records == []


def test_a_chunked_body_within_the_limit_is_accepted(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    assert chunked_post(client, status_params(Padding="x" * 1000)) == 200
    assert len(publisher.records) == 1


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (STATUS, {k: v for k, v in status_params().items() if k != "MessageSid"}, b"MessageSid"),
        (STATUS, status_params(MessageSid="SM-not-a-sid"), b"MessageSid"),
        ("/webhook/status?mid=0", status_params(), b"mid"),
        ("/webhook/status?mid=abc", status_params(), b"mid"),
        (STATUS, status_params(ErrorCode="x"), b"ErrorCode"),
        ("/webhook/inbound", inbound_params(From="whatsapp:12"), b"From"),
        ("/webhook", {"MessageSid": SID}, b"MessageStatus"),
    ],
)
def test_a_signed_but_malformed_callback_is_refused_with_400_naming_the_field(
    client: FlaskClient,
    publisher: FakePublisher,
    path: str,
    params: dict[str, str],
    field: bytes,
) -> None:
    reply = post_signed(client, path, params)
    assert reply.status_code == 400
    assert reply.data.startswith(field)
    assert publisher.records == []


def test_a_json_body_is_refused_with_400(client: FlaskClient, publisher: FakePublisher) -> None:
    reply = client.post(
        STATUS,
        json=status_params(),
        headers={"X-Twilio-Signature": signature(PUBLIC + STATUS, {})},
    )
    assert reply.status_code == 400
    assert b"x-www-form-urlencoded" in reply.data
    assert publisher.records == []


def test_an_unknown_status_is_acknowledged_counted_and_not_published(
    client: FlaskClient, publisher: FakePublisher, metrics: WebhookMetrics
) -> None:
    reply = post_signed(client, STATUS, status_params("partially_delivered"))
    assert reply.status_code == 200
    assert publisher.records == []
    sample = metrics.registry.get_sample_value(
        "notifier_webhook_ignored_total", {"reason": "unknown_status"}
    )
    assert sample == 1


def test_a_down_broker_is_answered_503_with_retry_after(
    client: FlaskClient, publisher: FakePublisher, metrics: WebhookMetrics
) -> None:
    publisher.fail_like_a_down_broker()
    reply = post_signed(client, STATUS, status_params())
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "5"
    assert metrics.registry.get_sample_value("notifier_webhook_publish_failures_total") == 1


def test_an_unexpected_error_answers_500_with_a_reference_only(
    client: FlaskClient, publisher: FakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    publisher.error = RuntimeError("bug with /secret/details")
    reply = post_signed(client, STATUS, status_params())
    assert reply.status_code == 500
    text = reply.data.decode()
    assert text.startswith("internal error (ref ")
    assert "secret" not in text and "Traceback" not in text
    [record] = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert record.exc_info is not None
    assert getattr(record, "ref", None) in text


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [("GET", "/webhook", 405), ("PUT", STATUS, 405), ("POST", "/nope", 404)],
)
def test_wrong_paths_and_methods_get_a_plain_error(
    client: FlaskClient, method: str, path: str, code: int
) -> None:
    reply = client.open(path, method=method)
    assert reply.status_code == code
    assert reply.mimetype == "text/plain"
    assert b"<" not in reply.data


def test_health_is_always_up_and_readiness_follows_the_publisher(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    publisher.is_ready = False
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_requests_are_counted_by_route_and_code(
    client: FlaskClient, metrics: WebhookMetrics
) -> None:
    post_signed(client, STATUS, status_params())
    client.post(STATUS, data=status_params())
    client.get("/healthz")

    def count(route: str, code: str) -> float | None:
        labels = {"route": route, "code": code}
        return metrics.registry.get_sample_value("notifier_webhook_requests_total", labels)

    assert (count("status", "200"), count("status", "403"), count("healthz", "200")) == (1, 1, 1)
    duration = metrics.registry.get_sample_value(
        "notifier_webhook_request_duration_seconds_count", {"route": "status"}
    )
    assert duration == 2


def test_logs_never_carry_the_body_the_name_or_the_full_number(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    post_signed(client, "/webhook/inbound", inbound_params(body="my home is at 5 Elm St"))
    post_signed(client, STATUS, status_params())
    lines = "\n".join(JsonFormatter("webhook").format(r) for r in caplog.records)
    assert "inbound message published" in lines
    for secret in ("Elm St", "Ada", CUSTOMER, CUSTOMER.lstrip("+"), "webhook-test-auth-token"):
        assert secret not in lines


def test_behind_a_trusted_proxy_the_forwarded_https_url_is_the_signed_one(
    publisher: FakePublisher,
) -> None:
    client = create_app(settings(public_url=None, proxies=1), publisher).test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    params = status_params()
    ok = post_signed(client, STATUS, params, headers=forwarded)
    # Signed for the http URL while the ingress says Twilio called https: refused.
    http_url = "http://hooks.example.com" + STATUS
    downgraded = post_signed(client, STATUS, params, signed_url=http_url, headers=forwarded)
    assert (ok.status_code, downgraded.status_code) == (200, 403)
    assert len(publisher.records) == 1


def test_without_a_trusted_proxy_forwarded_headers_are_ignored(publisher: FakePublisher) -> None:
    client = create_app(settings(public_url=None, proxies=0), publisher).test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    reply = post_signed(client, STATUS, status_params(), headers=forwarded)
    assert reply.status_code == 403
    # The URL the request reached us by is what counts then.
    direct = post_signed(client, STATUS, status_params(), signed_url="http://localhost" + STATUS)
    assert direct.status_code == 200
