"""Posts a form to a webhook the way Twilio does: url-encoded, signed, over a kept-alive socket.

The X-Twilio-Signature comes from the twilio SDK's own RequestValidator, computed over the
exact URL posted to (query string included) and every form parameter.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

USER_AGENT: Final = "TwilioProxy/1.1"
FORM_TYPE: Final = "application/x-www-form-urlencoded"
RESERVED_SUFFIXES: Final = (".example", ".test", ".invalid", ".localhost")
RESERVED_DOMAINS: Final = ("example.com", "example.net", "example.org")
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class PostFailed(Exception):
    """No HTTP answer: refused, reset, timed out, or a malformed response."""


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    reason: str
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """X-Twilio-Signature for a POST of `params` to `url`."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def is_reserved_host(url: str) -> bool:
    """Documentation-only names (RFC 2606/6761) that no webhook can live at."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.endswith(RESERVED_SUFFIXES) or any(
        host == domain or host.endswith("." + domain) for domain in RESERVED_DOMAINS
    )


class SignedPoster:
    """One connection per scheme/host/port, reused; not thread-safe (one per thread)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def post(
        self,
        url: str,
        params: Mapping[str, str],
        auth_token: str,
        *,
        timeout: float | None = None,
        idempotency_token: str | None = None,
    ) -> PostResult:
        """POST `params` to `url`, signed with `auth_token`; raises PostFailed with no answer."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PostFailed(f"not an absolute http(s) URL: {url!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": FORM_TYPE,
            "X-Twilio-Signature": signature(url, params, auth_token),
            "I-Twilio-Idempotency-Token": idempotency_token or str(uuid.uuid4()),
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
        }
        body = urlencode(params).encode("utf-8")
        key = (parts.scheme, parts.netloc)
        reused = key in self._connections
        for attempt in (1, 2):
            try:
                return self._exchange(key, target, body, headers, timeout)
            except _STALE as exc:
                # The receiver may have closed an idle kept-alive socket: one fresh try.
                if not reused or attempt == 2:
                    raise PostFailed(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def _exchange(
        self,
        key: tuple[str, str],
        target: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float | None,
    ) -> PostResult:
        conn = self._connection(key, timeout or self._timeout)
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except _STALE:
            self._drop(key)
            raise
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key)
            raise PostFailed(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self._drop(key)
        return PostResult(response.status, response.reason, text)

    def _connection(self, key: tuple[str, str], timeout: float) -> http.client.HTTPConnection:
        conn = self._connections.get(key)
        if conn is None:
            scheme, netloc = key
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=timeout)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=timeout)
            self._connections[key] = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self, key: tuple[str, str]) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)
