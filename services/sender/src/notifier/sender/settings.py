"""The sender's configuration, read from the environment once at start-up.

Invalid values are all reported together (ConfigError) before anything starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.common.config import DatabaseSettings, Env, KafkaSettings

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str
    auth_token: str = field(repr=False)
    # The `whatsapp:` sender number (E.164), unless a Messaging Service sends for us.
    whatsapp_from: str | None = None
    messaging_service_sid: str | None = None
    # The API base URL; None means Twilio itself. Set to the emulator in development.
    api_url: str | None = None
    timeout_seconds: float = 10.0

    @property
    def sender(self) -> str:
        """What Twilio rate-limits: the Messaging Service when set, else the number."""
        return self.messaging_service_sid or f"whatsapp:{self.whatsapp_from}"


@dataclass(frozen=True, slots=True)
class SenderSettings:
    database: DatabaseSettings
    kafka: KafkaSettings
    twilio: TwilioSettings
    # Base of Twilio's StatusCallback URL: "<url>/webhook/status?mid=<message id>".
    public_webhook_url: str
    group_id: str = "notifier-sender"
    # The number's messages per second, summed over every replica (WhatsApp default 80).
    sender_mps: float = 80.0
    # Slots are spaced for sender_mps x this, so arrival jitter cannot squeeze one
    # call too many into a one-second window at Twilio (15 ms of slack per window; the
    # sender's own jitter measured under 9 ms on the 2-core project machine at 80 MPS,
    # see the README).
    rate_safety_factor: float = 0.985
    # Each lease claims at most this much of the number's time (a run of slots).
    lease_run_seconds: float = 0.2
    # Per recipient: one message per interval after a burst of this many.
    pair_interval_seconds: float = 6.0
    pair_burst: int = 3
    concurrency: int = 64
    max_attempts: int = 5
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    max_buffered_per_partition: int = 1000
    grace_seconds: float = 20.0
    # Messages this replica got a SID for lately, so a command that comes back for one
    # (republished after a broker lost its data) is not sent again; 0 remembers none.
    # Two minutes covers a broker's loss being noticed and the commands coming back
    # (seconds); longer only holds memory (~350 bytes a message).
    recent_sends_capacity: int = 100_000
    recent_sends_seconds: float = 120.0
    # The status reconciler (one replica at a time): every interval, up to `batch`
    # messages quiet for `after` seconds (and for less than `max_age`) are fetched from
    # Twilio, at most `fetches_per_second`. An interval of 0 turns it off.
    reconcile_interval_seconds: float = 60.0
    reconcile_after_seconds: float = 900.0
    reconcile_max_age_seconds: float = 3 * 86_400.0
    reconcile_batch: int = 100
    reconcile_fetches_per_second: float = 10.0
    metrics_port: int = 9102
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SenderSettings:
        env = Env(environ)
        twilio = TwilioSettings(
            account_sid=env.text("TWILIO_ACCOUNT_SID"),
            auth_token=env.text("TWILIO_AUTH_TOKEN"),
            whatsapp_from=_without_channel(env.optional("TWILIO_WHATSAPP_FROM")),
            messaging_service_sid=env.optional("TWILIO_MESSAGING_SERVICE_SID"),
            api_url=env.optional("TWILIO_API_URL"),
            timeout_seconds=env.number("TWILIO_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=120.0),
        )
        _check_sender(env, twilio)
        webhook_url = env.text("PUBLIC_WEBHOOK_URL")
        if webhook_url and not webhook_url.startswith(("http://", "https://")):
            env.problems.append(f"PUBLIC_WEBHOOK_URL={webhook_url!r} must start with https://")
        settings = cls(
            database=DatabaseSettings.from_env(env),
            kafka=KafkaSettings.from_env(env),
            twilio=twilio,
            public_webhook_url=webhook_url,
            group_id=env.text("SENDER_GROUP_ID", "notifier-sender"),
            sender_mps=env.number("WHATSAPP_SENDER_MPS", 80.0, minimum=0.1, maximum=1000.0),
            rate_safety_factor=env.number(
                "SENDER_RATE_SAFETY_FACTOR", 0.985, minimum=0.5, maximum=1.0
            ),
            lease_run_seconds=env.number(
                "SENDER_LEASE_RUN_SECONDS", 0.2, minimum=0.01, maximum=5.0
            ),
            pair_interval_seconds=env.number(
                "SENDER_PAIR_INTERVAL_SECONDS", 6.0, minimum=0.0, maximum=3600.0
            ),
            pair_burst=env.integer("SENDER_PAIR_BURST", 3, minimum=1, maximum=1000),
            concurrency=env.integer("SENDER_CONCURRENCY", 64, minimum=1, maximum=1024),
            max_attempts=env.integer("SENDER_MAX_ATTEMPTS", 5, minimum=1, maximum=50),
            retry_base_seconds=env.number(
                "SENDER_RETRY_BASE_SECONDS", 0.5, minimum=0.0, maximum=60.0
            ),
            retry_max_seconds=env.number(
                "SENDER_RETRY_MAX_SECONDS", 30.0, minimum=0.0, maximum=3600.0
            ),
            max_buffered_per_partition=env.integer(
                "SENDER_MAX_BUFFERED_PER_PARTITION", 1000, minimum=1, maximum=1_000_000
            ),
            grace_seconds=env.number("SENDER_GRACE_SECONDS", 20.0, minimum=0.0, maximum=600.0),
            recent_sends_capacity=env.integer(
                "SENDER_RECENT_SENDS_CAPACITY", 100_000, minimum=0, maximum=10_000_000
            ),
            recent_sends_seconds=env.number(
                "SENDER_RECENT_SENDS_SECONDS", 120.0, minimum=1.0, maximum=86_400.0
            ),
            reconcile_interval_seconds=env.number(
                "SENDER_RECONCILE_INTERVAL_SECONDS", 60.0, minimum=0.0, maximum=86_400.0
            ),
            reconcile_after_seconds=env.number(
                "SENDER_RECONCILE_AFTER_SECONDS", 900.0, minimum=1.0, maximum=86_400.0
            ),
            reconcile_max_age_seconds=env.number(
                "SENDER_RECONCILE_MAX_AGE_SECONDS",
                3 * 86_400.0,
                minimum=60.0,
                maximum=30 * 86_400.0,
            ),
            reconcile_batch=env.integer("SENDER_RECONCILE_BATCH", 100, minimum=1, maximum=10_000),
            reconcile_fetches_per_second=env.number(
                "SENDER_RECONCILE_FETCHES_PER_SECOND", 10.0, minimum=0.1, maximum=100.0
            ),
            metrics_port=env.integer("METRICS_PORT", 9102, minimum=0, maximum=65_535),
            log_level=env.choice("LOG_LEVEL", "INFO", _LOG_LEVELS),
        )
        env.check()
        return settings


def _check_sender(env: Env, twilio: TwilioSettings) -> None:
    if twilio.whatsapp_from is None and twilio.messaging_service_sid is None:
        env.problems.append(
            "TWILIO_WHATSAPP_FROM (an E.164 number) or TWILIO_MESSAGING_SERVICE_SID is required"
        )
    if twilio.whatsapp_from is not None and not _E164.match(twilio.whatsapp_from):
        env.problems.append(
            f"TWILIO_WHATSAPP_FROM={twilio.whatsapp_from!r} must be E.164, e.g. +14155238886"
        )
    sid = twilio.messaging_service_sid
    if sid is not None and not _MESSAGING_SERVICE_SID.match(sid):
        env.problems.append(
            f"TWILIO_MESSAGING_SERVICE_SID={sid!r} must be MG followed by 32 hex digits"
        )


def _without_channel(number: str | None) -> str | None:
    """Accepts "whatsapp:+1..." as well as "+1...": the channel is added when sending."""
    return number.removeprefix("whatsapp:") if number else number
