"""The webhook's configuration, read from the environment once at start-up.

Invalid values are all reported together (ConfigError) before anything starts.
The Twilio auth token is a secret: it stays out of reprs and logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from notifier.common.config import Env, KafkaSettings

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    kafka: KafkaSettings
    # The key Twilio signs webhooks with (the account's auth token).
    twilio_auth_token: str = field(repr=False)
    # The public base URL Twilio calls, e.g. "https://hooks.example.com"; the signed
    # URL is this base + the request path + the query string. None: see below.
    public_webhook_url: str | None = None
    # Without a public URL: how many proxies in front of us set X-Forwarded-Proto/
    # Host/Port/Prefix (werkzeug's ProxyFix). 0 trusts no header: the URL the request
    # reached us by is used, which fails behind a TLS-terminating ingress.
    trusted_proxy_count: int = 0
    http_port: int = 8080
    metrics_port: int = 9104
    # Larger bodies are answered 413 without being read.
    max_body_bytes: int = 64 * 1024
    # A callback not acknowledged by Kafka within this is answered 503 (Twilio retries).
    publish_timeout_seconds: float = 5.0
    # gunicorn worker processes and threads per worker (gthread).
    workers: int = 2
    threads: int = 4
    # SIGTERM -> stop accepting, finish requests in flight, flush; within this.
    grace_seconds: float = 20.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebhookSettings:
        env = Env(environ)
        public_url = env.optional("PUBLIC_WEBHOOK_URL")
        if public_url is not None:
            problem = _public_url_problem(public_url)
            if problem:
                env.problems.append(f"PUBLIC_WEBHOOK_URL={public_url!r} {problem}")
            public_url = public_url.rstrip("/")
        settings = cls(
            kafka=KafkaSettings.from_env(env),
            twilio_auth_token=env.text("TWILIO_AUTH_TOKEN"),
            public_webhook_url=public_url,
            trusted_proxy_count=env.integer(
                "WEBHOOK_TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10
            ),
            http_port=env.integer("HTTP_PORT", 8080, minimum=0, maximum=65_535),
            metrics_port=env.integer("METRICS_PORT", 9104, minimum=0, maximum=65_535),
            max_body_bytes=env.integer(
                "WEBHOOK_MAX_BODY_BYTES", 64 * 1024, minimum=1024, maximum=10 * 1024 * 1024
            ),
            publish_timeout_seconds=env.number(
                "WEBHOOK_PUBLISH_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60.0
            ),
            workers=env.integer("WEB_CONCURRENCY", 2, minimum=1, maximum=64),
            threads=env.integer("GUNICORN_THREADS", 4, minimum=1, maximum=256),
            grace_seconds=env.number("WEBHOOK_GRACE_SECONDS", 20.0, minimum=1.0, maximum=600.0),
            log_level=env.text("LOG_LEVEL", "INFO").upper(),
        )
        if settings.log_level not in _LEVELS:
            env.problems.append(f"LOG_LEVEL={settings.log_level!r} must be one of {_LEVELS}")
        env.check()
        return settings

    @property
    def signed_url_source(self) -> str:
        """How the URL Twilio signed is worked out, for the start-up log."""
        if self.public_webhook_url:
            return f"PUBLIC_WEBHOOK_URL ({self.public_webhook_url})"
        if self.trusted_proxy_count:
            return f"X-Forwarded-* headers of {self.trusted_proxy_count} trusted proxies"
        return "the request's own URL (no PUBLIC_WEBHOOK_URL, no trusted proxy)"


def _public_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL like https://hooks.example.com"
    if parts.query or parts.fragment:
        return "must be a base URL without a query or fragment"
    return None
