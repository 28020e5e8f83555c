"""WhatsApp's rules on whom we may message, as pure decisions: opt-outs and the 24-hour window.

No I/O and no clock: the caller reads the recipient's state and passes `now`. A refusal
is a FailedPrecondition naming `phone_number` without repeating the number.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from notifier.common.errors import FailedPrecondition
from notifier.gateway.model import RecipientState

# Each message a customer sends opens (or extends) this window for free-form replies.
SESSION_WINDOW = timedelta(hours=24)


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """True while `now` is less than 24 hours after the customer's latest message."""
    return last_inbound_at is not None and now < last_inbound_at + SESSION_WINDOW


def opted_out_error() -> FailedPrecondition:
    return FailedPrecondition(
        "phone_number: the recipient opted out of our WhatsApp messages (they replied STOP); "
        "nothing can be sent to them until they reply START"
    )


def window_closed_error(last_inbound_at: datetime | None) -> FailedPrecondition:
    why = (
        "the recipient has never messaged us"
        if last_inbound_at is None
        else "the recipient's last message to us is more than 24 hours old"
    )
    return FailedPrecondition(
        "phone_number: the 24-hour customer-service window is closed: free-form text may be "
        f"sent only within 24 hours of the customer's last message, and {why}; "
        "send a template message (SendTemplateMessage) instead"
    )


def session_refusal(state: RecipientState, now: datetime) -> FailedPrecondition | None:
    """Why a session message may not go out now, or None when it may.

    Opt-out comes first: a STOP is itself an inbound message, so it opens a window.
    """
    if state.opted_out:
        return opted_out_error()
    if not window_open(state.last_inbound_at, now):
        return window_closed_error(state.last_inbound_at)
    return None
