"""Signed status callbacks without Flask's layers: the webhook's hottest request.

Twilio posts three or four status callbacks per message, each a small signed form. For
those, Flask's request context, routing, werkzeug's form machinery and response
finalisation cost more CPU than the work itself (docs/benchmarks.md, "Where the time
goes"). This WSGI middleware answers a request only when it is such a callback and
everything about it is in order: POST to /webhook/status or /webhook, a form body within
the size limit, a query of at most our `mid`, a valid signature over PUBLIC_WEBHOOK_URL,
and fields that parse into a status change. It then publishes through the same
`WebhookRoutes.publish` as the Flask view and counts the request in the same metrics.

Anything else (a bad signature, a malformed field, an inbound message, a health probe)
goes to the Flask app with the body handed on unread, so refusals, their logs and their
answers have one implementation. Without PUBLIC_WEBHOOK_URL (the URL then comes from
trusted proxies' headers) the middleware is not installed.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

from notifier.common.domain.messages import StatusChange
from notifier.common.errors import InvalidRequest
from notifier.webhook.forms import Kind, kind_of, parse_status_callback
from notifier.webhook.metrics import WebhookMetrics
from notifier.webhook.routes import FORM_TYPE, WebhookRoutes, internal_error
from notifier.webhook.signature import SignatureChecker

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Path -> the route name Flask's metrics use for it.
_ROUTES = {"/webhook/status": "status", "/webhook": "webhook"}
# The query our sender puts on the StatusCallback URL; any other query takes the slow path.
_MID_QUERY = re.compile(r"mid=([0-9]{1,19})")


class StatusFastPath:
    """WSGI middleware in front of the Flask app (see the module docstring)."""

    def __init__(
        self,
        app: WSGIApplication,
        routes: WebhookRoutes,
        signatures: SignatureChecker,
        metrics: WebhookMetrics,
        max_body_bytes: int,
    ) -> None:
        self.app = app  # the Flask app's own WSGI callable: every other request
        self._routes = routes
        self._signatures = signatures
        self._metrics = metrics
        self._max_body = max_body_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = _ROUTES.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            change = self._status_change(environ, route)
            if change is None:
                return self.app(environ, start_response)
            response = self._routes.publish(change)
        except Exception:  # a bug: answered as the app answers one
            response = internal_error(environ.get("PATH_INFO", ""))
        self._metrics.answered(route, response.status_code, time.perf_counter() - started)
        return response(environ, start_response)

    def _status_change(self, environ: WSGIEnvironment, route: str) -> StatusChange | None:
        """The callback's status change, or None when the Flask app should answer."""
        query = environ.get("QUERY_STRING", "")
        mid: str | None = None
        if query:
            match = _MID_QUERY.fullmatch(query)
            if match is None:
                return None
            mid = match.group(1)
        form = self._read_form(environ)
        if form is None:
            return None
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        url = self._signatures.url_for_path(environ.get("PATH_INFO", ""), query)
        if url is None or not self._signatures.is_valid_url(url, signature, form):
            return None
        try:
            if route == "webhook" and kind_of(form) is not Kind.STATUS:
                return None
            parsed = parse_status_callback(form, mid, self._routes.now())
        except InvalidRequest:
            return None
        return parsed if isinstance(parsed, StatusChange) else None

    def _read_form(self, environ: WSGIEnvironment) -> MultiDict[str, str] | None:
        """The form as werkzeug would parse it, or None to leave the request to Flask
        (the body is put back for it)."""
        content_type = environ.get("CONTENT_TYPE", "")
        length = environ.get("CONTENT_LENGTH", "")
        if content_type.partition(";")[0].strip().lower() != FORM_TYPE or not length.isdigit():
            return None
        size = int(length)
        if size > self._max_body:
            return None
        body = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return None
        # The same call werkzeug's form parser makes, error handler included.
        items = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
        return MultiDict(items)
