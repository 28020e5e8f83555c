"""`Reply`: the socket-free answer the app hands the server, and Twilio's error answers.

Pure data; the server turns a Reply into JSON on the wire after its `delay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.twilio_emulator.catalog import TwilioError


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer to send as JSON after waiting `delay` seconds."""

    status: int
    payload: object
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


def error_reply(
    error: TwilioError, delay: float = 0.0, headers: Mapping[str, str] | None = None
) -> Reply:
    """Twilio's error body; a 401 also carries the Basic challenge, as Twilio's does."""
    all_headers = dict(headers or {})
    if error.status == 401:
        all_headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return Reply(error.status, error.to_json(), all_headers, delay)
