"""LostTopics: when a consumer that lost a topic's partitions must rejoin its group."""

from __future__ import annotations

from notifier.common.rejoining import LostTopics


def test_nothing_to_do_until_partitions_were_lost() -> None:
    lost = LostTopics()
    lost.rebalanced()
    assert lost.to_ask(held=[]) == set()
    assert lost.answered(existing=["out"], held=[]) == []


def test_after_a_loss_it_waits_for_the_rebalance_then_for_the_topic_and_rejoins_once() -> None:
    lost = LostTopics()
    lost.lost(["out"])
    # Still rejoining after the loss: librdkafka is doing it, no need to ask.
    assert lost.to_ask(held=[]) == set()
    lost.rebalanced()  # given nothing: the topic was missing when the group rebalanced
    assert lost.to_ask(held=[]) == {"out"}
    assert lost.answered(existing=[], held=[]) == []  # still missing
    assert lost.to_ask(held=[]) == {"out"}
    assert lost.answered(existing=["out"], held=[]) == ["out"]  # back: rejoin
    assert lost.to_ask(held=[]) == set()  # once per loss
    assert lost.answered(existing=["out"], held=[]) == []


def test_a_member_given_the_topic_again_needs_no_rejoin() -> None:
    lost = LostTopics()
    lost.lost(["out"])
    lost.rebalanced()
    assert lost.to_ask(held=["out"]) == set()
    assert lost.answered(existing=["out"], held=["out"]) == []


def test_a_new_loss_before_the_rebalance_waits_for_that_rebalance() -> None:
    lost = LostTopics()
    lost.lost(["out"])
    lost.rebalanced()
    asked = lost.to_ask(held=[])
    lost.lost(["out"])  # lost again while the answer was on its way
    assert lost.answered(existing=asked, held=[]) == []
    lost.rebalanced()
    assert lost.answered(existing=["out"], held=[]) == ["out"]
