"""Whom we may message: the 24-hour window and opt-outs, decided from state and `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.gateway.model import RecipientState
from notifier.gateway.policy import SESSION_WINDOW, session_refusal, window_open

LAST = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        (LAST, True),
        (LAST + timedelta(hours=23, minutes=59, seconds=59), True),
        (LAST + SESSION_WINDOW - timedelta(microseconds=1), True),
        (LAST + SESSION_WINDOW, False),
        (LAST + timedelta(days=30), False),
        # A reply stamped by a clock a little ahead of ours still opens the window.
        (LAST - timedelta(seconds=2), True),
    ],
)
def test_the_window_is_open_for_24_hours_after_the_latest_inbound(
    now: datetime, open_: bool
) -> None:
    assert window_open(LAST, now) is open_


def test_a_number_that_never_wrote_has_no_window() -> None:
    assert not window_open(None, LAST)


def test_inside_the_window_a_session_message_may_go() -> None:
    assert session_refusal(RecipientState(False, LAST), LAST + timedelta(hours=1)) is None


def test_outside_the_window_the_refusal_names_the_24_hour_window() -> None:
    refusal = session_refusal(RecipientState(False, LAST), LAST + timedelta(hours=25))
    assert refusal is not None
    assert str(refusal).startswith("phone_number: the 24-hour customer-service window is closed")
    assert "more than 24 hours old" in str(refusal)
    never = session_refusal(RecipientState(False, None), LAST)
    assert never is not None and "never messaged us" in str(never)


def test_an_opt_out_wins_over_an_open_window() -> None:
    refusal = session_refusal(RecipientState(True, LAST), LAST + timedelta(minutes=1))
    assert refusal is not None
    assert str(refusal).startswith("phone_number: the recipient opted out")
    assert "START" in str(refusal)
