"""The status reconciler: recovers status callbacks lost for good, on one replica at a time.

Twilio does not post a callback again once our webhook answered 200, so one the broker
then lost (or one that never got through) is gone. Every interval the leader asks Twilio
(GET, at most `fetches_per_second`) about messages whose status stood still for a while,
and publishes what moved as Twilio's callback would have; the recorder applies it.
Up to `concurrency` GETs are in flight at once, so Twilio's latency (a few hundred
milliseconds) does not cap the rate below `fetches_per_second`; answers are applied in
the order the messages were picked, on the reconciler's own thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from notifier.common.domain.ids import TwilioSid
from notifier.common.domain.messages import Source, StatusChange
from notifier.common.errors import PermanentError, TransientError
from notifier.common.lifecycle import StopFlag
from notifier.sender import metrics
from notifier.sender.ratelimit import TokenBucket
from notifier.sender.reconcile_plan import (
    Candidate,
    CheckBackoff,
    Cursor,
    Scan,
    TwilioState,
    further_status,
)
from notifier.sender.service import ResultSink

log = logging.getLogger(__name__)

# Pages looked at per pass at most, so a window full of backed-off messages cannot keep
# one pass going; the walk resumes there next time.
_MAX_PAGES = 10
# GETs in flight at once at most, whatever the rate allowed.
MAX_CONCURRENCY = 32


def fetch_concurrency(fetches_per_second: float) -> int:
    """GETs in flight needed to reach the rate while Twilio takes up to a second to answer."""
    return max(1, min(MAX_CONCURRENCY, math.ceil(fetches_per_second)))


class StatusApi(Protocol):
    def fetch(self, sid: TwilioSid) -> TwilioState:
        """Twilio's record of one message; raises TransientApiError or PermanentApiError."""
        ...


class StaleMessages(Protocol):
    def lead(self) -> bool: ...
    def candidates(self, cursor: Cursor | None, limit: int) -> list[Candidate]: ...
    def resign(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    interval_seconds: float = 60.0
    after_seconds: float = 900.0
    batch: int = 100
    fetches_per_second: float = 10.0
    # GETs in flight at once (1: one after the other).
    concurrency: int = 1


class Reconciler:
    """`run_once()` is one pass; `start()` runs a pass every interval on a thread."""

    def __init__(
        self,
        store: StaleMessages,
        api: StatusApi,
        sink: ResultSink,
        settings: ReconcileSettings,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._api = api
        self._sink = sink
        self._settings = settings
        self._clock = clock
        self._now = now
        self._scan = Scan(CheckBackoff(settings.after_seconds), page_size=settings.batch * 5)
        self._pace = TokenBucket(settings.fetches_per_second, 1)
        self._stop = StopFlag()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._fetchers = ThreadPoolExecutor(
            max(1, settings.concurrency), thread_name_prefix="reconcile-fetch"
        )

    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._fetchers.shutdown(wait=False, cancel_futures=True)
        self._store.resign()

    def run_once(self) -> int:
        """One pass if this replica leads; returns how many messages were fetched."""
        leading = self._store.lead()
        metrics.RECONCILE_LEADER.set(1 if leading else 0)
        if not leading:
            return 0
        fetched = 0
        window = max(1, self._settings.concurrency)
        asked: deque[tuple[Candidate, Future[TwilioState]]] = deque()
        going = True
        for candidate in self._pick():
            while going and len(asked) >= window:
                going = self._check(*asked.popleft())
            if not going or not self._paced():
                break
            asked.append((candidate, self._fetchers.submit(self._api.fetch, candidate.sid)))
            fetched += 1
        # Answers already asked for are used even when the pass stops early.
        while asked:
            self._check(*asked.popleft())
        return fetched

    def _pick(self) -> list[Candidate]:
        wanted = self._settings.batch
        chosen: list[Candidate] = []
        for _ in range(_MAX_PAGES):
            page = self._store.candidates(self._scan.cursor, self._scan.page_size)
            taken, ended = self._scan.take(page, self._clock(), wanted - len(chosen))
            chosen += taken
            if ended or len(chosen) >= wanted:
                break
        return chosen

    def _paced(self) -> bool:
        """Waits for a fetch token; False when asked to stop meanwhile."""
        while (wait := self._pace.try_acquire(self._clock())) > 0:
            if self._stop.wait(wait):
                return False
        return not self._stop.is_set()

    def _check(self, candidate: Candidate, answer: Future[TwilioState]) -> bool:
        """Waits for one message's fetch and publishes its status if it moved; False on a
        transient error (Twilio is struggling: the pass stops there, to try next pass)."""
        backoff = self._scan.backoff
        try:
            state = answer.result()
        except CancelledError:
            return False  # stopping: the fetch never started
        except TransientError as exc:
            metrics.RECONCILE_FETCHES.labels("error").inc()
            log.warning("reconciler fetch failed", extra={"twilio_sid": candidate.sid,
                                                          "error": str(exc)})  # fmt: skip
            return False
        except PermanentError:
            metrics.RECONCILE_FETCHES.labels("not_found").inc()
            backoff.unchanged(candidate, self._clock())
            return True
        status = further_status(candidate.status, state)
        if status is None:
            metrics.RECONCILE_FETCHES.labels("unchanged").inc()
            backoff.unchanged(candidate, self._clock())
            return True
        metrics.RECONCILE_FETCHES.labels("moved").inc()
        metrics.RECONCILED.labels(status.value).inc()
        backoff.moved(candidate)
        change = StatusChange(
            message_id=candidate.message_id,
            twilio_sid=candidate.sid,
            status=status,
            occurred_at=self._now(),
            source=Source.TWILIO,
            error_code=state.error_code if status.is_final else None,
            error_message=state.error_message if status.is_final else None,
        )
        self._sink.publish(change, lambda: None)
        log.info(
            "status reconciled from twilio",
            extra={"message_id": candidate.message_id, "twilio_sid": candidate.sid,
                   "from_status": candidate.status.value, "status": status.value},
        )  # fmt: skip
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._settings.interval_seconds):
            try:
                self.run_once()
            except TransientError as exc:
                metrics.RECONCILE_LEADER.set(0)
                log.info("reconciler pass skipped", extra={"reason": str(exc)})
            except Exception:
                # A bug, not an outage: log it once and try again next interval.
                log.exception("reconciler pass failed unexpectedly")
