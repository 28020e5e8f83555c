"""Twilio's error codes, HTTP statuses and magic test numbers, as the emulator answers them.

Pure data and constructors; which request gets which error is decided in `validation` and `app`.
Sources: twilio.com/docs/errors/<code> and twilio.com/docs/iam/test-credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ERROR_DOCS_URL: Final = "https://www.twilio.com/docs/errors/"


@dataclass(frozen=True, slots=True)
class TwilioError:
    """One error answer of the 2010-04-01 API: HTTP status, Twilio code and message."""

    status: int
    code: int
    message: str

    @property
    def more_info(self) -> str:
        return f"{ERROR_DOCS_URL}{self.code}"

    def to_json(self) -> dict[str, object]:
        """The body Twilio sends with an error: code, message, more_info, status."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """An error a status callback reports (ErrorCode/ErrorMessage); no HTTP status of its own."""

    code: int
    message: str


UNKNOWN_ERROR: Final = DeliveryError(30008, "Unknown error")
"""What an `undelivered` WhatsApp message most often carries when the channel says no more."""
OUTSIDE_WINDOW: Final = DeliveryError(
    63016,
    "Failed to send freeform message because you are outside the allowed window."
    " If you are using WhatsApp, please use a Message Template.",
)
"""A free-form message outside the 24-hour window (twilio.com/docs/errors/63016)."""


def authenticate() -> TwilioError:
    return TwilioError(401, 20003, "Authenticate")


def not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def too_many_requests() -> TwilioError:
    return TwilioError(429, 20429, "Too Many Requests")


def internal_error() -> TwilioError:
    return TwilioError(500, 20500, "Internal Server Error")


def to_required() -> TwilioError:
    return TwilioError(400, 21604, "A 'To' phone number is required.")


def sender_required() -> TwilioError:
    return TwilioError(
        400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"
    )


def invalid_to(to: str) -> TwilioError:
    return TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def invalid_from(from_: str) -> TwilioError:
    return TwilioError(400, 21212, f"The 'From' number {from_} is not a valid phone number.")


def channel_mismatch() -> TwilioError:
    return TwilioError(
        400,
        21910,
        "Invalid 'From' and 'To' pair. 'From' and 'To' should be of the same channel",
    )


def invalid_messaging_service(sid: str) -> TwilioError:
    return TwilioError(400, 21705, f"The Messaging Service is invalid: {sid}")


def body_required() -> TwilioError:
    return TwilioError(400, 21619, "A text message body or media urls must be specified.")


def body_too_long() -> TwilioError:
    return TwilioError(
        400, 21617, "The concatenated message body exceeds the 1600 character limit."
    )


def invalid_content_sid(sid: str) -> TwilioError:
    return TwilioError(400, 21655, f"The ContentSid is Invalid: {sid}")


def content_sid_required() -> TwilioError:
    return TwilioError(
        400, 21654, "A ContentSid must be specified if ContentVariables are provided."
    )


def invalid_content_variables() -> TwilioError:
    return TwilioError(400, 21656, "The ContentVariables Parameter is invalid.")


MAGIC_TO: Final[dict[str, tuple[int, str]]] = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone"
        " number: {sender}.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the"
        " 'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
    # Emulator extension: real Twilio accepts the call and reports 63024 later in the status
    # callback; failing it at once lets the sender's "permanent error" path be tested directly.
    "+15005550010": (63024, "Invalid message recipient"),
}
"""Recipient numbers (any `whatsapp:` prefix removed) that always fail, as with test credentials."""

MAGIC_FROM: Final[dict[str, tuple[int, str]]] = {
    "+15005550001": (21212, "The 'From' number {sender} is not a valid phone number."),
    "+15005550007": (
        21606,
        "The 'From' phone number provided ({sender}) is not a valid message-capable Twilio"
        " phone number for this destination/account.",
    ),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}
"""Sender addresses (without any `whatsapp:` prefix) that always fail, as with test credentials."""


def magic_failure(to: str, sender: str) -> TwilioError | None:
    """The error a magic `To` or `From` address forces, or None; `From` is checked first."""
    if sender in MAGIC_FROM:
        code, text = MAGIC_FROM[sender]
        return TwilioError(400, code, text.format(to=to, sender=sender))
    if to in MAGIC_TO:
        code, text = MAGIC_TO[to]
        return TwilioError(400, code, text.format(to=to, sender=sender))
    return None
