"""The form parameters Twilio posts to webhooks: WhatsApp status callbacks and incoming messages.

Pure. Field names, values and casing follow Twilio's documentation and captured requests
(twilio.com/docs/messaging/guides/track-outbound-message-status and .../webhook-request).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

from notifier.twilio_emulator.catalog import DeliveryError
from notifier.twilio_emulator.ledger import RecordedMessage
from notifier.twilio_emulator.resource import API_VERSION, new_message_sid
from notifier.twilio_emulator.validation import split_channel

EVENT_TYPES: Final = {"delivered": "DELIVERED", "read": "READ", "undelivered": "UNDELIVERED"}
"""WhatsApp's post-delivery events, sent as EventType next to MessageStatus."""
OPT_OUT_KEYWORDS: Final = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "STOP"),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "START"),
    **dict.fromkeys(("HELP", "INFO"), "HELP"),
}
"""Twilio's default keywords -> OptOutType; only a whole body matches, in any case."""
WHATSAPP: Final = "whatsapp"


@functools.lru_cache(maxsize=16)
def channel_install_sid(account_sid: str) -> str:
    """`XE` + 32 hex: the installed WhatsApp channel, stable per account."""
    return "XE" + hashlib.sha256(account_sid.encode()).hexdigest()[:32]


def masked_channel_address(number: str) -> str:
    """ChannelToAddress: Twilio hides the last four digits (`+1650380XXXX`)."""
    return number[:-4] + "XXXX" if len(number) > 5 else number


def status_callback_form(
    message: RecordedMessage, status: str, error: DeliveryError | None
) -> dict[str, str]:
    """What Twilio posts to a message's StatusCallback when it reaches `status`."""
    channel, number = split_channel(message.to)
    whatsapp = channel == WHATSAPP
    form: dict[str, str] = {}
    if whatsapp and status in EVENT_TYPES:
        form["EventType"] = EVENT_TYPES[status]
    form |= {"SmsSid": message.sid, "SmsStatus": status, "MessageStatus": status}
    if whatsapp:
        form["ChannelToAddress"] = masked_channel_address(number)
    form["To"] = message.to
    if whatsapp:
        form["ChannelPrefix"] = channel
    form |= {"MessageSid": message.sid, "AccountSid": message.account_sid}
    if whatsapp and status == "sent":
        form["StructuredMessage"] = "false"
    if message.from_:
        form["From"] = message.from_
    if message.messaging_service_sid:
        form["MessagingServiceSid"] = message.messaging_service_sid
    form["ApiVersion"] = API_VERSION
    if whatsapp:
        form["ChannelInstallSid"] = channel_install_sid(message.account_sid)
    if error is not None:
        form |= {"ErrorCode": str(error.code), "ErrorMessage": error.message}
    return form


def opt_out_type(body: str) -> str | None:
    """STOP, START or HELP when the whole body is one of Twilio's default keywords."""
    return OPT_OUT_KEYWORDS.get(body.strip().upper())


def whatsapp_address(number: str) -> str:
    """`+4477...` -> `whatsapp:+4477...`; an address with a channel is kept."""
    return number if split_channel(number)[0] else f"{WHATSAPP}:{number}"


def inbound_form(
    *,
    account_sid: str,
    from_: str,
    to: str,
    body: str,
    profile_name: str | None = None,
    button_payload: str | None = None,
    button_text: str | None = None,
    messaging_service_sid: str | None = None,
    advanced_opt_out: bool = True,
    sid: str | None = None,
) -> dict[str, str]:
    """What Twilio posts to the incoming-message webhook for one WhatsApp text or quick reply.

    OptOutType is only added with `advanced_opt_out` (Twilio sends it when the number's
    Messaging Service has Advanced Opt-Out on).
    """
    sid = sid or new_message_sid()
    sender, recipient = whatsapp_address(from_), whatsapp_address(to)
    button = button_payload is not None
    form = {"SmsMessageSid": sid, "NumMedia": "0"}
    if profile_name:
        form["ProfileName"] = profile_name
    form |= {
        "MessageType": "button" if button else "text",
        "SmsSid": sid,
        "WaId": split_channel(sender)[1].removeprefix("+"),
        "SmsStatus": "received",
        "Body": body,
        "To": recipient,
    }
    if button:
        form |= {"ButtonText": button_text or body, "ButtonPayload": button_payload or ""}
    if messaging_service_sid:
        form["MessagingServiceSid"] = messaging_service_sid
    keyword = opt_out_type(body) if advanced_opt_out else None
    if keyword is not None:
        form["OptOutType"] = keyword
    form |= {
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": API_VERSION,
    }
    return form
