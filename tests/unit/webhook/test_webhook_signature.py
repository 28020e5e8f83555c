"""The URL a Twilio signature is checked against: public base + path + query, or ProxyFix's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from notifier.webhook.signature import SignatureChecker, behind_proxies, signed_url

TOKEN = "test-auth-token"


def request_for(
    path: str = "/webhook/status",
    query: str = "",
    base_url: str = "http://webhook.notifier.svc:8080",
    headers: dict[str, str] | None = None,
    remote_addr: str = "10.0.0.7",
) -> Request:
    builder = EnvironBuilder(
        path=path,
        base_url=base_url,
        query_string=query,
        method="POST",
        headers=list((headers or {}).items()),
        environ_base={"REMOTE_ADDR": remote_addr},
    )
    return Request(builder.get_environ())


def through_proxies(request: Request, hops: int) -> Request:
    """The request as the app sees it once ProxyFix trusted `hops` proxies."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return []

    def start_response(*args: Any) -> Callable[[bytes], object]:
        return lambda data: None

    behind_proxies(app, hops)(request.environ, start_response)
    return Request(seen)


def test_the_public_base_replaces_the_in_cluster_address() -> None:
    request = request_for(query="mid=42")
    url = signed_url("https://hooks.example.com", request)
    assert url == "https://hooks.example.com/webhook/status?mid=42"


def test_a_base_with_a_path_prefix_and_a_trailing_slash_is_joined_cleanly() -> None:
    url = signed_url("https://example.com/twilio/", request_for(path="/webhook/inbound"))
    assert url == "https://example.com/twilio/webhook/inbound"


def test_the_query_string_is_kept_as_sent() -> None:
    request = request_for(query="mid=42&x=a%20b&y=%2F")
    url = signed_url("https://hooks.example.com", request)
    assert url == "https://hooks.example.com/webhook/status?mid=42&x=a%20b&y=%2F"


def test_without_a_public_base_or_proxies_the_request_url_is_used() -> None:
    request = request_for(query="mid=1")
    assert signed_url(None, request) == "http://webhook.notifier.svc:8080/webhook/status?mid=1"


def test_one_trusted_proxy_supplies_scheme_and_host() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    request = through_proxies(request_for(query="mid=1", headers=headers), hops=1)
    assert signed_url(None, request) == "https://hooks.example.com/webhook/status?mid=1"


def test_a_forwarded_prefix_and_port_are_part_of_the_url() -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "hooks.example.com",
        "X-Forwarded-Port": "8443",
        "X-Forwarded-Prefix": "/twilio",
    }
    request = through_proxies(request_for(headers=headers), hops=1)
    assert signed_url(None, request) == "https://hooks.example.com:8443/twilio/webhook/status"


def test_with_two_hops_the_value_the_outer_proxy_set_is_used() -> None:
    # The ingress (outer) appends what Twilio called; a sidecar appends its own view.
    headers = {
        "X-Forwarded-Proto": "https, http",
        "X-Forwarded-Host": "hooks.example.com, ingress.internal",
        "X-Forwarded-For": "203.0.113.9, 10.0.0.3",
    }
    request = through_proxies(request_for(headers=headers), hops=2)
    assert signed_url(None, request) == "https://hooks.example.com/webhook/status"


def test_with_one_hop_a_header_forged_by_the_client_is_not_trusted() -> None:
    # The client sent "evil.example" first; our one proxy appended the real host.
    headers = {"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "evil.example, real.io"}
    request = through_proxies(request_for(headers=headers), hops=1)
    assert signed_url(None, request) == "https://real.io/webhook/status"


@pytest.mark.parametrize(
    ("signed_for", "valid"),
    [
        ("https://hooks.example.com/webhook/status?mid=7", True),
        ("https://hooks.example.com:443/webhook/status?mid=7", True),  # Twilio may add :443
        ("http://hooks.example.com/webhook/status?mid=7", False),
        ("https://other.example.com/webhook/status?mid=7", False),
        ("https://hooks.example.com/webhook/status?mid=8", False),
    ],
)
def test_the_checker_accepts_only_the_public_url_with_every_parameter(
    signed_for: str, valid: bool
) -> None:
    params = MultiDict({"MessageSid": "SM1", "MessageStatus": "sent", "Unknown": "new"})
    signature = RequestValidator(TOKEN).compute_signature(signed_for, params)
    request = request_for(query="mid=7", headers={"X-Twilio-Signature": signature})
    checker = SignatureChecker(TOKEN, "https://hooks.example.com")
    assert checker.is_valid(request, params) is valid


def test_the_checker_refuses_a_request_without_signature() -> None:
    checker = SignatureChecker(TOKEN, "https://hooks.example.com")
    assert not checker.is_valid(request_for(), MultiDict())
