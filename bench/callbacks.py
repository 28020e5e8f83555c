"""Twilio's WhatsApp status callbacks as the webhook benchmark posts them: the form fields
Twilio sends, signed with the twilio SDK's RequestValidator over the public URL, as raw
HTTP/1.1 request bytes (so the load client spends nothing on them while measuring).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

STATUS_PATH = "/webhook/status"
# The lifecycle Twilio reports after the API call; the benchmark cycles through it.
STATUSES = ("sent", "delivered", "read")
_EVENT_TYPES = {"delivered": "DELIVERED", "read": "READ"}


def message_sid(mid: int) -> str:
    """A Message SID (`SM` + 32 hex digits) that is stable for our message id."""
    return "SM" + hashlib.md5(f"bench-{mid}".encode()).hexdigest()


def status_form(mid: int, status: str, account_sid: str, to: str, from_: str) -> dict[str, str]:
    """The fields Twilio posts to a WhatsApp message's StatusCallback, in its order."""
    sid = message_sid(mid)
    form: dict[str, str] = {}
    if status in _EVENT_TYPES:
        form["EventType"] = _EVENT_TYPES[status]
    form |= {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "ChannelToAddress": to[:-4] + "XXXX",
        "To": f"whatsapp:{to}",
        "ChannelPrefix": "whatsapp",
        "MessageSid": sid,
        "AccountSid": account_sid,
    }
    if status == "sent":
        form["StructuredMessage"] = "false"
    form |= {
        "From": f"whatsapp:{from_}",
        "ApiVersion": "2010-04-01",
        "ChannelInstallSid": "XE" + hashlib.sha256(account_sid.encode()).hexdigest()[:32],
    }
    return form


class CallbackSigner:
    """Builds signed POSTs of status callbacks to `<public_url>/webhook/status?mid=<id>`,
    sent to whatever address the server really listens on (`host`)."""

    def __init__(self, public_url: str, auth_token: str, host: str) -> None:
        self._public = public_url.rstrip("/")
        self._validator = RequestValidator(auth_token)
        self._host = host

    def request(self, mid: int, form: dict[str, str]) -> bytes:
        target = f"{STATUS_PATH}?mid={mid}"
        signature = self._validator.compute_signature(self._public + target, form)
        body = urlencode(form).encode()
        head = (
            f"POST {target} HTTP/1.1\r\n"
            f"Host: {self._host}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Accept: */*\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
            f"I-Twilio-Idempotency-Token: bench-{mid}-{form['MessageStatus']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body
