"""X-Twilio-Signature checks over the public URL Twilio called, with the twilio SDK.

Twilio signs the URL it called plus every form parameter, so the URL must be the
public one: PUBLIC_WEBHOOK_URL + our path + query, or the scheme/host/prefix our
trusted proxies forwarded (ProxyFix), never the in-cluster address.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

SIGNATURE_HEADER = "X-Twilio-Signature"
# A query parameter the SDK checks as well (JSON bodies); such URLs take its full check.
_BODY_HASH = "bodySHA256"
# What werkzeug leaves unquoted in a path (RFC 3986 pchar), so a path reads as sent.
_PATH_SAFE = "/!$&'()*+,;=:@%-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def signed_url(public_base: str | None, request: Request) -> str | None:
    """The URL Twilio signed for `request`, or None when no URL can be built from it.

    With a public base it is that base + the path we were called on + the raw query
    string; without one it is the request's URL, as rewritten by ProxyFix when our
    proxies are trusted. Forwarded headers come from outside: a prefix that is no
    path or a port out of range makes no URL, and such a request is refused (403).
    """
    if public_base is None:
        try:
            return request.url
        except ValueError:
            return None
    return public_url(public_base, request.path, request.query_string.decode("latin-1"))


def public_url(public_base: str, path: str, query: str) -> str:
    """PUBLIC_WEBHOOK_URL + the path and raw query we were called with, quoted as sent."""
    url = public_base.rstrip("/") + quote(path, safe=_PATH_SAFE)
    return f"{url}?{quote(query, safe=_QUERY_SAFE)}" if query else url


def behind_proxies(app: WSGIApplication, hops: int) -> WSGIApplication:
    """Trusts the X-Forwarded-For/Proto/Host/Port/Prefix set by `hops` proxies in front."""
    return ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)


class SignatureChecker:
    """Validates X-Twilio-Signature with the auth token (HMAC-SHA1, as Twilio signs)."""

    def __init__(self, auth_token: str, public_base: str | None) -> None:
        self._validator = RequestValidator(auth_token)
        self._public_base = public_base.rstrip("/") if public_base else None

    def url_for(self, request: Request) -> str | None:
        return signed_url(self._public_base, request)

    def url_for_path(self, path: str, query: str) -> str | None:
        """The signed URL of a request to `path`?`query`; None without PUBLIC_WEBHOOK_URL
        (the URL then depends on forwarded headers: see `url_for`)."""
        return public_url(self._public_base, path, query) if self._public_base else None

    def is_valid(self, request: Request, params: Mapping[str, str]) -> bool:
        """True when the signature covers this URL and every parameter in `params`.

        `params` should be the MultiDict of the form: a repeated parameter is signed
        with each of its values.
        """
        url = self.url_for(request)
        if url is None:
            return False
        return self.is_valid_url(url, request.headers.get(SIGNATURE_HEADER, ""), params)

    def is_valid_url(self, url: str, signature: str, params: Mapping[str, str]) -> bool:
        """`is_valid` for a URL already known."""
        if not signature:
            return False
        # The SDK's validate() always computes two HMACs (the URL with and without its
        # port). One over the URL as given settles every genuine callback to a URL that
        # Twilio signed as configured; anything else gets the SDK's full check.
        if _BODY_HASH not in url:
            expected = self._validator.compute_signature(url, params)
            if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
                return True
        return bool(self._validator.validate(url, params, signature))
