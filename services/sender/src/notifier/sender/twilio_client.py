"""The Twilio Messages API through the official SDK: the only module importing `twilio`.

Sends templates as ContentSid + ContentVariables and session messages as Body, from the
`whatsapp:` number or the Messaging Service, and fetches a message's current status for the
reconciler; every failure becomes TransientApiError or PermanentApiError by `classify`. The
SDK retries nothing: the scheduler retries, paced.

A create call's `go()` is asked by the connection (urllib3) that is about to write it, after
the SDK has built the request and after a new connection is set up: the pacing decision (is
this call still in its slot?) is taken just before the write, not before the SDK's work and
a TCP/TLS handshake, which can take milliseconds (more to Twilio itself).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.utils import select_proxy
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from notifier.common.domain.ids import TwilioSid
from notifier.common.domain.messages import SendCommand
from notifier.sender.classify import Verdict, classify
from notifier.sender.reconcile_plan import TwilioState
from notifier.sender.service import Accepted, Go, NotSent, PermanentApiError, TransientApiError
from notifier.sender.settings import TwilioSettings

# The go() of the call this thread is making, until a connection has asked it.
_pending = threading.local()


def _take_pending() -> Go | None:
    """This thread's pending `go()`, taken: each call is asked once."""
    go: Go | None = getattr(_pending, "go", None)
    _pending.go = None
    return go


def _ask(go: Go, what: str) -> None:
    if not go():
        raise NotSent(f"{what} given up before sending")


def _ask_before_writing(conn: HTTPConnection, method: str, url: str) -> None:
    """Asks this thread's pending `go()`, if any, once `conn` is up (a new connection's TCP
    and TLS set-up is not lateness of the call) and before the request is written."""
    go = _take_pending()
    if go is None:
        return
    if conn.sock is None:
        conn.connect()
    _ask(go, f"{method} {url}")


class _GatedHTTPConnection(HTTPConnection):
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        _ask_before_writing(self, method, url)
        super().request(method, url, *args, **kwargs)


class _GatedHTTPSConnection(HTTPSConnection):
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        _ask_before_writing(self, method, url)
        super().request(method, url, *args, **kwargs)


class _GatedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GatedHTTPConnection


class _GatedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GatedHTTPSConnection


class _GatedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections ask the calling thread's `go()`, if one is set,
    right before writing; through a proxy the adapter asks it before sending instead."""

    def __init__(self, *, pool_size: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GatedHTTPPool, "https": _GatedHTTPSPool}

    @contextmanager
    def gate(self, go: Go) -> Iterator[None]:
        """Requests this thread sends inside the block are first put to `go()`."""
        _pending.go = go
        try:
            yield
        finally:
            _pending.go = None

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        # Proxy pools are requests' own, not ours: ask here instead.
        if select_proxy(request.url or "", kwargs.get("proxies")):
            go = _take_pending()
            if go is not None:
                _ask(go, f"{request.method} {request.path_url}")
        return super().send(request, *args, **kwargs)


class TwilioMessages:
    """`MessagesApi` over twilio.rest.Client, with one keep-alive connection per worker."""

    def __init__(self, settings: TwilioSettings, pool_size: int) -> None:
        http = TwilioHttpClient(timeout=settings.timeout_seconds)
        # The SDK's default adapter keeps at most ~6 connections and only for https;
        # every concurrent call needs its own, or calls queue behind one another.
        adapter = _GatedAdapter(pool_size=pool_size)
        self._adapter = adapter
        if http.session is None:
            raise RuntimeError("TwilioHttpClient built without a session")
        http.session.mount("https://", adapter)
        http.session.mount("http://", adapter)
        _skip_environment_scan(http.session)
        self._client = Client(settings.account_sid, settings.auth_token, http_client=http)
        if settings.api_url:
            self._client.api.base_url = settings.api_url.rstrip("/")
        if settings.messaging_service_sid:
            self._sender: dict[str, str] = {"messaging_service_sid": settings.messaging_service_sid}
        else:
            self._sender = {"from_": f"whatsapp:{settings.whatsapp_from}"}

    def create(self, command: SendCommand, status_callback_url: str, go: Go) -> Accepted:
        params: dict[str, str] = {
            "to": f"whatsapp:{command.to}",
            "status_callback": status_callback_url,
            **self._sender,
        }
        if command.body is not None:
            # Free-form text: WhatsApp takes it only inside the 24-hour window (else 63016).
            params["body"] = command.body
        elif command.content_sid is not None:
            params["content_sid"] = command.content_sid
            if command.content_variables:
                params["content_variables"] = json.dumps(dict(command.content_variables))
        with _api_errors(), self._adapter.gate(go):
            message = self._client.messages.create(**params)
        return Accepted(TwilioSid(str(message.sid)), str(message.status))

    def fetch(self, sid: TwilioSid) -> TwilioState:
        """Twilio's record of one message now: status, and the error of a failed one."""
        with _api_errors():
            message = self._client.messages(sid).fetch()
        code = message.error_code
        return TwilioState(str(message.status), int(code) if code else None, message.error_message)


def _skip_environment_scan(session: requests.Session) -> None:
    """Without proxy variables, stop requests from reading the whole environment for
    them on every call (~110 us with a pod's service variables, ~7 % of the sender's
    CPU). A CA bundle named by REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE is still used."""
    if urllib.request.getproxies():
        return  # a proxy is configured: keep requests' own handling of it and NO_PROXY
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle


@contextmanager
def _api_errors() -> Iterator[None]:
    """Every way a call can fail, as TransientApiError or PermanentApiError."""
    try:
        yield
    except TwilioRestException as exc:
        raise _api_error(str(exc.msg), exc.status, exc.code) from exc
    except requests.Timeout as exc:
        raise _api_error(f"Twilio did not answer in time: {exc}", None, None, True) from exc
    except requests.RequestException as exc:
        raise _api_error(f"cannot reach Twilio: {exc}", None, None) from exc


def _api_error(
    message: str, http_status: int | None, code: int | None, timeout: bool = False
) -> TransientApiError | PermanentApiError:
    decision = classify(http_status, code, timeout=timeout)
    if decision.verdict is Verdict.RETRY:
        return TransientApiError(
            message, reason=decision.reason, http_status=http_status, code=code
        )
    return PermanentApiError(message, code, http_status)
