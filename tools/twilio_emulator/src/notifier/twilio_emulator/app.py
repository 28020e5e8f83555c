"""What the emulator answers: the Messages API (create, fetch); `/_emulator/` goes to `control`.

Socket-free: `handle()` takes a method, target, body and Authorization header and returns a
`Reply` (with the delay to wait before sending it); `server` does the HTTP plumbing. An accepted
message's status callbacks are planned here and handed to a `CallbackSink` to post.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import parse_qs, urlsplit

from notifier.twilio_emulator import catalog, resource
from notifier.twilio_emulator.callback_plan import (
    CallbackSettings,
    PlannedCallback,
    plan_callbacks,
    rule_for,
)
from notifier.twilio_emulator.catalog import TwilioError
from notifier.twilio_emulator.config import EmulatorConfig, parse_update
from notifier.twilio_emulator.control import CONTROL_PREFIX, control_reply
from notifier.twilio_emulator.faults import FaultPlan
from notifier.twilio_emulator.ledger import Ledger, RecordedMessage
from notifier.twilio_emulator.lifecycle import timeline
from notifier.twilio_emulator.limiter import SlidingWindowLimiter, retry_after_header
from notifier.twilio_emulator.reply import Reply, error_reply
from notifier.twilio_emulator.validation import (
    CreateRequest,
    parse_create,
    parse_mid,
    split_channel,
)

MESSAGES_PATH: Final = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
MESSAGE_PATH: Final = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)\.json")


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One create call's result, for the log line (numbers unmasked: the logger masks them)."""

    accepted: bool
    status: int
    code: int | None
    sid: str | None
    to: str | None
    sender: str | None
    mid: str | None


class CallbackSink(Protocol):
    """Posts planned status callbacks (the dispatcher); the app only decides what they are."""

    def schedule(
        self,
        message: RecordedMessage,
        plan: Sequence[PlannedCallback],
        settings: CallbackSettings,
        auth_token: str,
        after: float = 0.0,
    ) -> None: ...

    def cancel_all(self) -> None: ...


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class EmulatorApp:
    """The emulator's behaviour, shared by every connection thread."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_call: Callable[[CallOutcome], None] | None = None,
        ledger: Ledger | None = None,
        callbacks: CallbackSink | None = None,
    ) -> None:
        self._config = config
        self._callbacks = callbacks
        self._clock = clock
        # Arrival times are the admission readings of `clock`, shown on the wall clock as
        # it read at start: a second clock read after admission would stray from the one
        # the window counted (a thread switch in between), and windows recomputed from the
        # record would then disagree with the limiter's.
        self._wall_offset = wall_clock() - clock()
        self._rng = rng or random.Random()
        self._on_call = on_call
        # One lock orders admission and recording, so the window sees arrivals in clock order.
        self._lock = threading.Lock()
        self._limiter = SlidingWindowLimiter(config.mps)
        self.ledger = ledger or Ledger()
        self.faults = FaultPlan()

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    def configure(self, raw: object) -> EmulatorConfig:
        """Apply a `/_emulator/config` body; raises ConfigError (nothing applied) if bad."""
        with self._lock:
            update = parse_update(self._config, raw)
            self._config = update.config
            self._limiter.set_rate(update.config.mps)
        if update.fail_next is not None:
            self.faults.set_next(update.fail_next)
        for to, rule in update.fail_to.items():
            self.faults.set_for_to(to, rule)
        return update.config

    def reset(self) -> None:
        """Forget every call, window, fault and pending callback; settings stay as they are."""
        if self._callbacks is not None:
            self._callbacks.cancel_all()
        with self._lock:
            self._limiter.reset()
            self.ledger.reset()
            self.faults.clear()

    def handle(self, method: str, target: str, body: bytes, authorization: str | None) -> Reply:
        path = urlsplit(target).path
        if path.startswith(CONTROL_PREFIX):
            return control_reply(self, method, path, body)
        if method == "POST" and (match := MESSAGES_PATH.fullmatch(path)):
            return self._create(path, match.group(1), body, authorization)
        if method == "GET" and (match := MESSAGE_PATH.fullmatch(path)):
            return self._fetch(path, match.group(1), match.group(2), authorization)
        return error_reply(catalog.not_found(path))

    def _authorise(
        self, path: str, url_account: str, authorization: str | None
    ) -> TwilioError | None:
        config = self._config
        credentials = basic_credentials(authorization)
        if credentials is None or not (
            hmac.compare_digest(credentials[0], config.account_sid)
            and hmac.compare_digest(credentials[1], config.auth_token)
        ):
            return catalog.authenticate()
        if url_account != config.account_sid:
            # Twilio hides other accounts' resources: a valid login gets 404, not 403.
            return catalog.not_found(path)
        return None

    def _latency(self) -> float:
        config = self._config
        jitter = self._rng.uniform(0, config.jitter_ms) if config.jitter_ms else 0.0
        return (config.latency_ms + jitter) / 1000.0

    def _create(self, path: str, account: str, body: bytes, authorization: str | None) -> Reply:
        delay = self._latency()
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        to, sender = form.get("To"), form.get("From") or form.get("MessagingServiceSid")
        mid = parse_mid(form.get("StatusCallback"))
        error = self._authorise(path, account, authorization)
        if error is None:
            fault = self.faults.take(to or "", split_channel(to or "")[1])
            if fault is not None:
                delay += fault.delay_ms / 1000.0
                error = fault.error
        parsed = parse_create(form) if error is None else error
        if isinstance(parsed, TwilioError):
            return self._reject(parsed, to, sender, mid, delay)
        config = self._config
        # The plan is made whether or not callbacks are posted: it is also how the
        # message's own status moves on, which a fetch reports.
        plan = plan_callbacks(
            config.callbacks, rule_for(parsed.to, config.callback_rules), self._rng
        )
        with self._lock:
            now = self._clock()
            admission = self._limiter.admit(parsed.sender, now)
            if not admission.admitted:
                retry = {"Retry-After": retry_after_header(admission.retry_after)}
                return self._reject(catalog.too_many_requests(), to, sender, mid, delay, retry)
            message = self._record(parsed, admission.in_window, plan, now, delay)
        self._notify(CallOutcome(True, 201, None, message.sid, to, sender, message.mid))
        self._schedule_callbacks(message, plan, after=delay)
        return Reply(201, resource.message_json(message), delay=delay)

    def _schedule_callbacks(
        self, message: RecordedMessage, plan: Sequence[PlannedCallback], after: float
    ) -> None:
        """Post the plan from the moment the answer leaves (after its latency)."""
        config = self._config
        if self._callbacks is None or not config.callbacks.enabled or not message.status_callback:
            return
        self._callbacks.schedule(message, plan, config.callbacks, config.auth_token, after)

    def _record(
        self,
        request: CreateRequest,
        in_window: int,
        plan: Sequence[PlannedCallback],
        admitted_at: float,
        delay: float,
    ) -> RecordedMessage:
        initial = resource.initial_status(request.messaging_service_sid)
        message = RecordedMessage(
            sid=resource.new_message_sid(),
            account_sid=self._config.account_sid,
            arrived_at=admitted_at + self._wall_offset,
            to=request.to,
            from_=request.from_,
            messaging_service_sid=request.messaging_service_sid,
            content_sid=request.content_sid,
            content_variables=request.content_variables,
            body=request.body,
            status_callback=request.status_callback,
            mid=request.mid,
            status=initial,
        )
        self.ledger.record_accepted(
            message, in_window, timeline(initial, plan, admitted_at + delay)
        )
        return message

    def _reject(
        self,
        error: TwilioError,
        to: str | None,
        sender: str | None,
        mid: str | None,
        delay: float,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        self.ledger.record_rejected(error, mid)
        self._notify(CallOutcome(False, error.status, error.code, None, to, sender, mid))
        return error_reply(error, delay, headers)

    def _notify(self, outcome: CallOutcome) -> None:
        if self._on_call is not None:
            self._on_call(outcome)

    def _fetch(self, path: str, account: str, sid: str, authorization: str | None) -> Reply:
        delay = self._latency()
        error = self._authorise(path, account, authorization)
        message = self.ledger.get(sid) if error is None else None
        if error is None and (message is None or message.account_sid != account):
            error = catalog.not_found(path)
        current = self.ledger.status_of(sid, self._clock()) if message is not None else None
        if error is not None or message is None or current is None:
            return error_reply(error or catalog.not_found(path), delay)
        # Twilio's record, not what reached the webhook: it moves on with the plan's times.
        return Reply(
            200, resource.message_json(message, current.status, current.error), delay=delay
        )
