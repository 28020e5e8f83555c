"""A consumer that rejoins its group when it was left holding nothing of a topic it lost.

librdkafka rejoins a group when the partition count of a subscribed topic changes, and
only then. A broker that lost its data (the in-memory dev broker restarted, a cluster
rebuilt) drops the group: every member's partitions are lost, and the members rejoin
while the topic is still missing, so each is given nothing of it. When the topic's owner
creates it again with the same partition count, librdkafka sees no change and the group
holds nothing of the topic for good. (The chaos run found the sender idle that way, every
command published after the restart waiting, QUEUED.)

So a member that lost partitions of a topic, and after the next rebalance holds none of
it, asks (every `check_seconds`) whether the topic exists, and once it does, leaves the
group and subscribes again: it rejoins, and the assignment is made on fresh metadata.
Once per loss: an idle member of a larger group costs one extra rebalance when partitions
were lost, never a storm. `LostTopics` decides (pure); `RejoiningConsumer` asks through
the admin client's futures, so the polling thread never waits for an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka import Consumer, Message, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
_REQUEST_TIMEOUT_SECONDS = 10.0


class LostTopics:
    """Topics whose partitions this member lost and holds none of since. Pure."""

    def __init__(self) -> None:
        self._lost: set[str] = set()
        self._settled = False  # a rebalance completed since the last loss

    def lost(self, topics: Iterable[str]) -> None:
        self._lost.update(topics)
        self._settled = False

    def rebalanced(self) -> None:
        """The group gave this member its (possibly empty) share again."""
        self._settled = True

    def to_ask(self, held: Collection[str]) -> set[str]:
        """Topics to look up now (empty: nothing to ask)."""
        self._lost.difference_update(held)
        return set(self._lost) if self._settled else set()

    def answered(self, existing: Collection[str], held: Collection[str]) -> list[str]:
        """The lost topics that exist now while none of them is held: rejoin for these."""
        self._lost.difference_update(held)
        if not self._settled:
            return []
        rejoin = sorted(self._lost.intersection(existing))
        self._lost.difference_update(rejoin)
        return rejoin


class RejoiningConsumer(Consumer):
    """A confluent-kafka Consumer that subscribes again when `LostTopics` says so.

    Looks after its topics on the thread that polls, right after each `consume`/`poll`
    (where the rebalance callbacks run).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        admin_config: Mapping[str, Any],
        check_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(dict(config))
        self._admin_config = dict(admin_config)
        self._admin: AdminClient | None = None
        self._check_seconds = check_seconds
        self._clock = clock
        self._lost = LostTopics()
        self._subscription: tuple[list[str], dict[str, RebalanceCallback]] | None = None
        self._asked: Mapping[str, Future[Any]] | None = None
        self._next_ask = 0.0

    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        # Without on_lost, librdkafka reports lost partitions to on_revoke.
        when_lost = on_lost or on_revoke

        def assigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            self._lost.rebalanced()
            self._next_ask = 0.0
            if on_assign is not None:
                on_assign(consumer, partitions)

        def lost(consumer: Any, partitions: list[TopicPartition]) -> None:
            self._lost.lost(p.topic for p in partitions)
            if when_lost is not None:
                when_lost(consumer, partitions)

        callbacks: dict[str, RebalanceCallback] = {"on_assign": assigned, "on_lost": lost}
        if on_revoke is not None:
            callbacks["on_revoke"] = on_revoke
        self._subscription = (list(topics), callbacks)
        super().subscribe(list(topics), **callbacks)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        records: list[Message] = super().consume(num_messages, timeout)
        self._look_after_topics()
        return records

    def poll(self, timeout: float = -1) -> Message | None:
        record: Message | None = super().poll(timeout)
        self._look_after_topics()
        return record

    def _look_after_topics(self) -> None:
        if self._subscription is None:
            return
        if self._asked is not None:
            if not all(future.done() for future in self._asked.values()):
                return
            existing = [t for t, future in self._asked.items() if future.exception() is None]
            self._asked = None
            rejoin = self._lost.answered(existing, self._held())
            if rejoin:
                log.warning(
                    "holding nothing of topics whose partitions were lost, though they "
                    "exist: rejoining the group",
                    extra={"topics": rejoin},
                )
                # Subscribing to the same topics again changes nothing (cooperative
                # protocol): leave and join again.
                topics, callbacks = self._subscription
                super().unsubscribe()
                super().subscribe(topics, **callbacks)
        now = self._clock()
        if now < self._next_ask:
            return
        self._next_ask = now + self._check_seconds
        wanted = self._lost.to_ask(self._held())
        if wanted:
            self._asked = self._describe(wanted)

    def _held(self) -> set[str]:
        return {p.topic for p in self.assignment()}

    def _describe(self, topics: Collection[str]) -> Mapping[str, Future[Any]]:
        if self._admin is None:
            self._admin = AdminClient(self._admin_config)
        self._admin.poll(0)  # hands its log lines (if it has a logger) to logging
        futures: Mapping[str, Future[Any]] = self._admin.describe_topics(
            TopicCollection(sorted(topics)), request_timeout=_REQUEST_TIMEOUT_SECONDS
        )
        return futures
