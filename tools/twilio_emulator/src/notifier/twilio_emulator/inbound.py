"""`twilio-emulator inbound`: posts one signed incoming WhatsApp message to the webhook, as Twilio.

`post_inbound` does the same for tests. The CLI prints the HTTP status and body and exits 0
on a 2xx answer, 1 otherwise (no answer included).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from notifier.twilio_emulator.validation import E164, split_channel
from notifier.twilio_emulator.webhook_client import PostFailed, SignedPoster
from notifier.twilio_emulator.webhook_forms import inbound_form

DEFAULT_TO: Final = "+14155238886"
"""Twilio's WhatsApp sandbox number."""
DEFAULT_PROFILE_NAME: Final = "Emulated Customer"
INBOUND_PATH: Final = "/webhook/inbound"
DEFAULT_WEBHOOK_URL: Final = "http://127.0.0.1:8080" + INBOUND_PATH


@dataclass(frozen=True, slots=True)
class InboundResult:
    """The webhook's answer, and the form that was posted."""

    status: int
    reason: str
    body: str
    params: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def post_inbound(
    from_: str,
    body: str,
    *,
    to: str = DEFAULT_TO,
    webhook_url: str = DEFAULT_WEBHOOK_URL,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    profile_name: str | None = DEFAULT_PROFILE_NAME,
    button_payload: str | None = None,
    button_text: str | None = None,
    messaging_service_sid: str | None = None,
    advanced_opt_out: bool = True,
    timeout: float = 10.0,
) -> InboundResult:
    """POST one incoming message from `from_` to `webhook_url`, signed with `auth_token`.

    Raises PostFailed when the webhook does not answer at all.
    """
    params = inbound_form(
        account_sid=account_sid,
        from_=from_,
        to=to,
        body=body,
        profile_name=profile_name,
        button_payload=button_payload,
        button_text=button_text,
        messaging_service_sid=messaging_service_sid,
        advanced_opt_out=advanced_opt_out,
    )
    poster = SignedPoster(timeout)
    try:
        result = poster.post(webhook_url, params, auth_token)
    finally:
        poster.close()
    return InboundResult(result.status, result.reason, result.body, params)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    public = env.get("PUBLIC_WEBHOOK_URL")
    parser.add_argument("--from", dest="from_", required=True, type=_number, help="+447700900123")
    parser.add_argument("--body", required=True, help="the text, e.g. STOP")
    parser.add_argument("--to", type=_number, default=DEFAULT_TO, help="our WhatsApp number")
    parser.add_argument(
        "--webhook-url",
        default=public.rstrip("/") + INBOUND_PATH if public else DEFAULT_WEBHOOK_URL,
        help="where to post (default: $PUBLIC_WEBHOOK_URL/webhook/inbound or %(default)s)",
    )
    parser.add_argument(
        "--auth-token",
        default=env.get("TWILIO_AUTH_TOKEN") or DEFAULT_AUTH_TOKEN,
        help="signing key (default: $TWILIO_AUTH_TOKEN or the dev token)",
    )
    parser.add_argument(
        "--account-sid", default=env.get("TWILIO_ACCOUNT_SID") or DEFAULT_ACCOUNT_SID
    )
    parser.add_argument("--profile-name", default=DEFAULT_PROFILE_NAME)
    parser.add_argument("--button-payload", help="a quick-reply tap: its payload (Body = text)")
    parser.add_argument("--button-text", help="the tapped button's text (default: --body)")
    parser.add_argument("--messaging-service-sid", help="MG...: the number's Messaging Service")
    parser.add_argument(
        "--no-opt-out-type",
        dest="advanced_opt_out",
        action="store_false",
        help="leave out OptOutType, as without Advanced Opt-Out",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def run(args: argparse.Namespace) -> int:
    """Post the message described by `args`; print the answer; 0 on 2xx, 1 otherwise."""
    try:
        result = post_inbound(
            args.from_,
            args.body,
            to=args.to,
            webhook_url=args.webhook_url,
            auth_token=args.auth_token,
            account_sid=args.account_sid,
            profile_name=args.profile_name or None,
            button_payload=args.button_payload,
            button_text=args.button_text,
            messaging_service_sid=args.messaging_service_sid,
            advanced_opt_out=args.advanced_opt_out,
            timeout=args.timeout,
        )
    except PostFailed as exc:
        print(f"no answer from {args.webhook_url}: {exc}", file=sys.stderr)
        return 1
    print(f"{result.status} {result.reason}")
    if result.body.strip():
        print(result.body.rstrip())
    return 0 if result.ok else 1


def _number(raw: str) -> str:
    """An E.164 number, with or without the `whatsapp:` prefix."""
    if not E164.fullmatch(split_channel(raw.strip())[1]):
        raise argparse.ArgumentTypeError(f"{raw!r} is not an E.164 number like +447700900123")
    return raw.strip()
