from hypothesis import given
from hypothesis import strategies as st

from notifier.common.domain.status import (
    Advance,
    Ignore,
    MessageStatus,
    apply_status,
    from_twilio,
    furthest,
)

S = MessageStatus


def test_forward_moves_advance() -> None:
    assert apply_status(S.QUEUED, S.SENDING) == Advance(S.SENDING)
    assert apply_status(S.SENT, S.READ) == Advance(S.READ)


def test_read_after_delivered_is_kept_and_late_delivered_is_ignored() -> None:
    assert apply_status(S.DELIVERED, S.READ) == Advance(S.READ)
    outcome = apply_status(S.READ, S.DELIVERED)
    assert isinstance(outcome, Ignore)
    assert "DELIVERED arrived after READ" in outcome.reason


def test_late_sent_never_overwrites_read() -> None:
    assert isinstance(apply_status(S.READ, S.SENT), Ignore)


def test_duplicate_is_ignored() -> None:
    assert apply_status(S.SENT, S.SENT) == Ignore("already SENT")


def test_final_statuses_never_move() -> None:
    for final in (S.FAILED, S.UNDELIVERED):
        for incoming in S:
            assert isinstance(apply_status(final, incoming), Ignore)


def test_failure_overrides_progress() -> None:
    assert apply_status(S.SENT, S.UNDELIVERED) == Advance(S.UNDELIVERED)
    assert apply_status(S.QUEUED, S.FAILED) == Advance(S.FAILED)


def test_twilio_statuses_map_to_ours() -> None:
    assert from_twilio("queued") is S.SENDING
    assert from_twilio("accepted") is S.SENDING
    assert from_twilio(" Delivered ") is S.DELIVERED
    assert from_twilio("read") is S.READ
    assert from_twilio("undelivered") is S.UNDELIVERED
    assert from_twilio("receiving") is None
    assert from_twilio("") is None


_progress = st.lists(st.sampled_from([S.SENDING, S.SENT, S.DELIVERED, S.READ]), max_size=12)


@given(_progress, st.randoms())
def test_any_order_of_progress_ends_at_the_furthest(statuses: list[MessageStatus], rnd) -> None:
    shuffled = statuses[:]
    rnd.shuffle(shuffled)
    expected = max(statuses, key=lambda s: s.rank, default=S.QUEUED)
    assert furthest(shuffled, S.QUEUED) is expected
