"""RecentSends: message id -> SID for an hour at most, the oldest forgotten first."""

from __future__ import annotations

import pytest

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.sender.recent_sends import RecentSend, RecentSends


def sid(n: int) -> TwilioSid:
    return TwilioSid(f"SM{n:032x}")


def test_a_send_is_remembered_until_it_is_an_hour_old() -> None:
    recent = RecentSends(max_age_seconds=3600)
    recent.remember(MessageId(1), sid(1), now=10.0)
    assert recent.get(MessageId(1), now=3609.9) == RecentSend(sid(1), 10.0)
    assert recent.get(MessageId(1), now=3610.0) is None
    assert len(recent) == 0


def test_beyond_capacity_the_oldest_sends_are_forgotten() -> None:
    recent = RecentSends(capacity=3)
    for n in range(1, 6):
        recent.remember(MessageId(n), sid(n), now=float(n))
    assert [recent.get(MessageId(n), now=6.0) is not None for n in range(1, 6)] == [
        False, False, True, True, True,
    ]  # fmt: skip


def test_sending_again_refreshes_the_entry() -> None:
    recent = RecentSends(capacity=2, max_age_seconds=100)
    recent.remember(MessageId(1), sid(1), now=0.0)
    recent.remember(MessageId(2), sid(2), now=1.0)
    recent.remember(MessageId(1), sid(9), now=2.0)  # a second send of 1 (another SID)
    recent.remember(MessageId(3), sid(3), now=3.0)  # evicts 2, now the oldest
    assert recent.get(MessageId(1), now=3.0) == RecentSend(sid(9), 2.0)
    assert recent.get(MessageId(2), now=3.0) is None


def test_capacity_zero_remembers_nothing() -> None:
    recent = RecentSends(capacity=0)
    recent.remember(MessageId(1), sid(1), now=0.0)
    assert recent.get(MessageId(1), now=0.0) is None


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RecentSends(capacity=-1)
    with pytest.raises(ValueError):
        RecentSends(max_age_seconds=0)
