"""The inbound fold: each message once, and per number only the latest opt-out change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.common.domain.ids import TwilioSid
from notifier.common.domain.messages import InboundMessage
from notifier.common.domain.optout import OptChange
from notifier.recorder.inbound_fold import latest_opt_changes, unique_messages

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ADA, BOB = "+447700900123", "+447700900456"


def inbound(
    n: int, body: str, *, phone: str = ADA, at: float = 0, opt_out_type: str | None = None
) -> InboundMessage:
    return InboundMessage(
        twilio_sid=TwilioSid(f"SM{n:032x}"),
        from_number=phone,
        to_number="+14155238886",
        received_at=T0 + timedelta(seconds=at),
        body=body,
        opt_out_type=opt_out_type,
    )


def test_a_message_repeated_in_a_batch_is_kept_once_in_sid_order() -> None:
    first, second = inbound(2, "hello"), inbound(1, "hi")
    again = inbound(2, "hello, redelivered")
    assert unique_messages([first, second, again]) == [second, first]


def test_the_latest_change_of_a_number_wins_whatever_the_arrival_order() -> None:
    start, stop = inbound(1, "START", at=20), inbound(2, "STOP", at=10)
    [update] = latest_opt_changes([start, stop])
    assert (update.phone_number, update.change, update.opted_out) == (ADA, OptChange.OPT_IN, False)
    assert (update.keyword, update.twilio_sid) == ("START", start.twilio_sid)
    assert update.changed_at == T0 + timedelta(seconds=20)


def test_messages_that_change_nothing_are_left_out_and_numbers_are_sorted() -> None:
    batch = [
        inbound(1, "STOP", phone=BOB, at=1),
        inbound(2, "HELP", at=2),
        inbound(3, "where is my parcel?", at=3),
        inbound(4, "ARRET", at=4, opt_out_type="STOP"),
    ]
    updates = latest_opt_changes(batch)
    assert [(u.phone_number, u.change, u.keyword) for u in updates] == [
        (ADA, OptChange.OPT_OUT, "STOP"),
        (BOB, OptChange.OPT_OUT, "STOP"),
    ]


def test_on_equal_receive_times_the_first_change_seen_wins() -> None:
    [update] = latest_opt_changes([inbound(1, "STOP", at=5), inbound(2, "START", at=5)])
    assert update.change is OptChange.OPT_OUT
