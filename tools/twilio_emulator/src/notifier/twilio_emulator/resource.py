"""The Message resource JSON the 2010-04-01 API answers for a create or a fetch.

Pure apart from SID generation (random). Field names and formats follow Twilio's Message
resource: RFC 2822 dates in GMT, string counts, `accepted` status for Messaging Services.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final

from notifier.twilio_emulator.catalog import DeliveryError
from notifier.twilio_emulator.ledger import RecordedMessage

API_VERSION: Final = "2010-04-01"


def new_message_sid() -> str:
    """`SM` + 32 lowercase hex digits, like every SMS/WhatsApp Message SID."""
    return "SM" + uuid.uuid4().hex


def initial_status(messaging_service_sid: str | None) -> str:
    """Twilio answers `accepted` when a Messaging Service picks the sender, else `queued`."""
    return "accepted" if messaging_service_sid else "queued"


def rfc2822(epoch_seconds: float) -> str:
    """`Fri, 31 Oct 2014 03:39:29 +0000`, as in Twilio's date_created."""
    moment = datetime.fromtimestamp(int(epoch_seconds), tz=UTC)
    return format_datetime(moment)


def message_uri(account_sid: str, sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def message_json(
    message: RecordedMessage, status: str | None = None, error: DeliveryError | None = None
) -> dict[str, object]:
    """The Message resource for `message`, as a create answers it, or as a fetch does with
    its `status` now and the `error` that status carries."""
    created = rfc2822(message.arrived_at)
    base = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body or "",
        "date_created": created,
        "date_sent": None,
        "date_updated": created,
        "direction": "outbound-api",
        "error_code": error.code if error else None,
        "error_message": error.message if error else None,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        # Twilio reports 0 segments until a Messaging Service has picked a sender.
        "num_segments": "0" if message.messaging_service_sid else "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": status or message.status,
        "subresource_uris": {
            "media": f"{base}/Media.json",
            "feedback": f"{base}/Feedback.json",
        },
        "to": message.to,
        "uri": message_uri(message.account_sid, message.sid),
    }
