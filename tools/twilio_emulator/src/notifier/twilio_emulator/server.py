"""HTTP plumbing and lifecycle: a threaded HTTP/1.1 keep-alive server around `EmulatorApp`.

`EmulatorServer` is the in-process API for tests and benchmarks (start/stop, ledger reads,
config, fault injection, status callbacks); what gets answered is decided in `app`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from notifier.twilio_emulator import catalog
from notifier.twilio_emulator.app import CallOutcome, EmulatorApp
from notifier.twilio_emulator.callback_log import CallbackRecord
from notifier.twilio_emulator.callback_plan import CallbackRule, CallbackSettings
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, EmulatorConfig
from notifier.twilio_emulator.dispatcher import CallbackDispatcher
from notifier.twilio_emulator.faults import FaultRule
from notifier.twilio_emulator.ledger import Ledger, LedgerStats, RecordedMessage
from notifier.twilio_emulator.reply import Reply

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog: 100+ clients connecting at once must not be refused

    def __init__(self, address: tuple[str, int], app: EmulatorApp, stopping: threading.Event):
        self.app = app
        self.stopping = stopping
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (e.g. timed out during injected latency) is normal here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
            return
        log.exception("error on the connection from %s", client_address)

    def close_connections(self) -> None:
        """Wake keep-alive threads blocked reading an idle connection, so they end now."""
        with self.connections_lock:
            for conn in self.connections:
                # A client may have closed its end already: then there is nothing to wake.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the SDK's requests session reuses sockets
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms
    # for the delayed ACK on every call.
    disable_nagle_algorithm = True
    server: _HttpServer
    server_version = "TwilioEmulator/1.0"

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(Reply(400, {"error": "bad Content-Length"}))
            self.close_connection = True
            return
        if length > MAX_BODY_BYTES:
            self._send(Reply(413, {"error": "request body too large"}))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        try:
            reply = self.server.app.handle(
                method, self.path, body, self.headers.get("Authorization")
            )
        except Exception:
            log.exception("unexpected error answering %s %s", method, self.path)
            reply = Reply(500, catalog.internal_error().to_json())
        if reply.delay > 0 and self.server.stopping.wait(reply.delay):
            self.close_connection = True
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        data = json.dumps(reply.payload).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's per-request stderr line; the app logs each call as JSON."""


class EmulatorServer:
    """A Twilio Messages API emulator on a background thread; use as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        mps: int = 0,
        latency_ms: int = 0,
        jitter_ms: int = 0,
        on_call: Callable[[CallOutcome], None] | None = None,
        callbacks: CallbackSettings | bool = True,
        callback_rules: Mapping[str, CallbackRule] | None = None,
        callback_workers: int = 4,
    ) -> None:
        """`callbacks`: post status callbacks (True: the realistic defaults), or how to."""
        if not isinstance(callbacks, CallbackSettings):
            callbacks = CallbackSettings(enabled=callbacks)
        rules = dict(callback_rules or {})
        config = EmulatorConfig(
            account_sid, auth_token, mps, latency_ms, jitter_ms, callbacks, rules
        )
        ledger = Ledger()
        self._dispatcher = CallbackDispatcher(ledger.callbacks, workers=callback_workers)
        self.app = EmulatorApp(config, on_call=on_call, ledger=ledger, callbacks=self._dispatcher)
        self._address = (host, port)
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        """Bind the socket and serve on a daemon thread; returns once connections are accepted."""
        if self._httpd is not None:
            raise RuntimeError("emulator already started")
        self._stopping.clear()
        self._httpd = _HttpServer(self._address, self.app, self._stopping)
        self._dispatcher.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="twilio-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: cut pending latencies short, close idle connections, release the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        thread.join()
        self._dispatcher.stop()
        self._httpd = self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("emulator not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to give the SDK (`client.api.base_url`) or `TWILIO_API_URL`."""
        host = self._address[0]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    @property
    def config(self) -> EmulatorConfig:
        return self.app.config

    def messages(self) -> list[RecordedMessage]:
        return self.app.ledger.messages()

    def stats(self) -> LedgerStats:
        return self.app.ledger.stats()

    def callbacks(self) -> list[CallbackRecord]:
        """Status callbacks with an outcome (posted, failed or skipped), oldest first."""
        return self.app.ledger.callbacks.records()

    def configure(self, **settings: object) -> EmulatorConfig:
        """Change settings at runtime (`mps=`, `callbacks={"mode": "failed"}`, ...), as
        `POST /_emulator/config`."""
        return self.app.configure(settings)

    def set_callback_rule(self, to: str, rule: CallbackRule | None) -> None:
        """Callbacks for `to` follow `rule` (mode, shuffle, duplicate); None removes it."""
        self.app.configure({"callback_rules": {to: rule.to_json() if rule else None}})

    def fail_next(self, *rules: FaultRule) -> None:
        """Replace the queue of one-shot faults for the next create calls."""
        self.app.faults.set_next(rules)

    def fail_to(self, to: str, rule: FaultRule | None) -> None:
        """Fail (or delay) every call to `to` by `rule`; None removes the rule."""
        self.app.faults.set_for_to(to, rule)

    def reset(self) -> None:
        self.app.reset()
