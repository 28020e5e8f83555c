"""The emulator's sliding-window limiter, driven by fake arrival times."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.twilio_emulator.limiter import SlidingWindowLimiter, retry_after_header


def test_admits_up_to_mps_calls_in_one_window() -> None:
    limiter = SlidingWindowLimiter(3)
    verdicts = [limiter.admit("a", 10.0 + i * 0.1).admitted for i in range(4)]
    assert verdicts == [True, True, True, False]


def test_window_is_half_open_so_a_call_exactly_one_second_later_is_admitted() -> None:
    limiter = SlidingWindowLimiter(1)
    assert limiter.admit("a", 5.0).admitted
    assert not limiter.admit("a", 5.999).admitted
    assert limiter.admit("a", 6.0).admitted


def test_refused_calls_do_not_use_up_the_window() -> None:
    limiter = SlidingWindowLimiter(2)
    limiter.admit("a", 0.0)
    limiter.admit("a", 0.5)
    for t in (0.6, 0.7, 0.8):
        assert not limiter.admit("a", t).admitted
    assert limiter.admit("a", 1.0).admitted  # only the call at 0.0 left the window


def test_each_sender_has_its_own_window() -> None:
    limiter = SlidingWindowLimiter(1)
    assert limiter.admit("whatsapp:+14155550100", 0.0).admitted
    assert limiter.admit("MG" + "0" * 32, 0.0).admitted
    assert not limiter.admit("whatsapp:+14155550100", 0.1).admitted


def test_zero_mps_admits_everything_but_still_counts_the_window() -> None:
    limiter = SlidingWindowLimiter(0)
    admissions = [limiter.admit("a", i * 0.001) for i in range(500)]
    assert all(a.admitted for a in admissions)
    assert admissions[-1].in_window == 500
    assert limiter.admit("a", 5.0).in_window == 1


def test_retry_after_says_when_the_oldest_call_leaves() -> None:
    limiter = SlidingWindowLimiter(2)
    limiter.admit("a", 0.2)
    limiter.admit("a", 0.5)
    refused = limiter.admit("a", 0.9)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(0.3)
    assert refused.in_window == 2


def test_lowering_the_rate_keeps_calls_already_in_the_window() -> None:
    limiter = SlidingWindowLimiter(0)
    for i in range(5):
        limiter.admit("a", i * 0.1)
    limiter.set_rate(3)
    refused = limiter.admit("a", 0.5)
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(0.7)  # three must leave: 0.0, 0.1, 0.2
    assert limiter.admit("a", 1.21).admitted


def test_reset_forgets_every_window() -> None:
    limiter = SlidingWindowLimiter(1)
    limiter.admit("a", 0.0)
    limiter.reset()
    assert limiter.admit("a", 0.1).admitted


def test_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="mps"):
        SlidingWindowLimiter(-1)


def test_retry_after_header_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.0) == "1"
    assert retry_after_header(0.3) == "1"
    assert retry_after_header(1.2) == "2"


@given(
    mps=st.integers(min_value=1, max_value=10),
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.4), min_size=1, max_size=200),
)
def test_no_one_second_window_ever_holds_more_than_mps_admitted_calls(
    mps: int, gaps: list[float]
) -> None:
    limiter = SlidingWindowLimiter(mps)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if limiter.admit("a", now).admitted:
            admitted.append(now)
    for i, start in enumerate(admitted):
        assert sum(1 for t in admitted[i:] if t < start + 1.0) <= mps
