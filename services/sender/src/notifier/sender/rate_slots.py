"""Global send slots of a sender number, leased from PostgreSQL (GCRA), shared by all replicas.

Mechanism. `sender_rate_slots.next_slot_at` is the earliest time the next Twilio call
from the number may start, on the database's clock. A replica with n calls ready leases
n consecutive slots in one statement: it locks the row, reads `clock_timestamp()` once,
moves `next_slot_at` to `greatest(next_slot_at, now + lead) + n x spacing`, and gets back
that clock reading and its first slot. spacing = 1 / (MPS x safety factor). Runs are
short (SENDER_LEASE_RUN_SECONDS, 0.2 s), never larger than the calls waiting for a slot,
and a replica holds at most two unused runs, so replicas interleave run by run.

The replica places the run on its own monotonic clock through `ratelimit.ClockOffset`:
each lease is also a clock sample (database reading vs the midpoint of our round trip),
and the sample with the fastest recent round trip gives the offset, as NTP does. So a
slow answer does not shift the slots it brought (a plain "delay from now" would inherit
that lease's round-trip jitter: measured p99 18-105 ms on a busy 2-core machine), and
replica clocks never need to agree with the database or with each other. Leases run in
autocommit (one round trip each), and with too few recent samples (start, idle) the pacer
first takes plain clock readings (`read_clock`). `lead`
(10-500 ms: 1.5 x the slowest recent round trip) keeps an idle timeline's first slot
ahead of the answer.

Why any one-second window stays <= MPS. The row lock serialises leases and they never
overlap, so every replica's calls sit on one grid of slots `spacing` apart; MPS + 1
consecutive slots span MPS x spacing = 1 / safety seconds (1.0204 s at the default
0.98). The extra 20 ms absorbs how far a call's arrival at Twilio strays from its slot:
the offset estimate (half the fastest round trip), a worker's wake-up, the SDK and the
network. The check is made at the last moment we control, when the SDK has built the
request and it is about to be written (`twilio_client`): a call not on the wire within
half that slack after its slot gives the slot up and waits for another rather than crowd
the next slots (counted as `late`).

Failure modes. PostgreSQL down: leases fail (TransientError) and are retried with
backoff; calls wait, nothing is sent unpaced. A replica that dies, or drops work on
revoke or shutdown, leaves its leased slots unused: at most its two runs (0.4 s) of the
number's capacity are wasted, never exceeded. Idle time is not banked: an idle timeline
restarts at `now + lead`, so no burst follows a pause. A step of the database's clock
misplaces runs until the samples before it age out (16 leases or 30 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from notifier.common.db import Database
from notifier.sender.pacer import ClockReading, Lease

# One clock read, taken after the row lock, so time spent waiting for another
# replica's lease is not counted as time already elapsed on our first slot.
_LEASE = """
WITH locked AS (
    SELECT next_slot_at FROM sender_rate_slots WHERE sender = %(sender)s FOR UPDATE
), now AS (
    SELECT next_slot_at, clock_timestamp() AS t FROM locked
)
UPDATE sender_rate_slots AS s
SET next_slot_at = greatest(now.next_slot_at, now.t + make_interval(secs => %(lead)s))
    + make_interval(secs => %(run)s)
FROM now
WHERE s.sender = %(sender)s
RETURNING
    extract(epoch FROM now.t)::float8,
    extract(epoch FROM greatest(now.next_slot_at, now.t + make_interval(secs => %(lead)s)))::float8
"""

_READ_CLOCK = "SELECT extract(epoch FROM clock_timestamp())::float8"

_CREATE = """
INSERT INTO sender_rate_slots (sender, next_slot_at) VALUES (%(sender)s, clock_timestamp())
ON CONFLICT (sender) DO NOTHING
"""


class PostgresSlotLeaser:
    """Leases runs of slots for one sender (a `whatsapp:` number or Messaging Service SID)."""

    def __init__(
        self,
        db: Database,
        sender: str,
        spacing: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._sender = sender
        self._spacing = spacing
        self._clock = clock

    @property
    def spacing(self) -> float:
        return self._spacing

    def lease(self, count: int, lead: float) -> Lease:
        """Claims `count` slots, the first at least `lead` seconds after the database's
        clock reading; returns both times (database seconds).

        Raises TransientError when PostgreSQL is unavailable.
        """
        params = {"sender": self._sender, "run": count * self._spacing, "lead": lead}
        # Autocommit: the lease is one statement, so one round trip, and the clock reading
        # sits near the middle of what `sent_at`..`received_at` brackets (inside a
        # transaction the BEGIN would go first, in the same bracket).
        with self._db.autocommit() as cur:
            sent_at = self._clock()
            cur.execute(_LEASE, params)
            received_at = self._clock()
            row = cur.fetchone()
            if row is None:
                # First lease for this sender anywhere: create the row, then lease.
                cur.execute(_CREATE, params)
                sent_at = self._clock()
                cur.execute(_LEASE, params)
                received_at = self._clock()
                row = cur.fetchone()
        if row is None:
            raise RuntimeError(f"sender_rate_slots row for {self._sender!r} vanished")
        return Lease(float(row[0]), float(row[1]), sent_at, received_at)

    def read_clock(self) -> ClockReading:
        """One reading of the database's clock; raises TransientError when PostgreSQL is
        unavailable."""
        with self._db.autocommit() as cur:
            sent_at = self._clock()
            cur.execute(_READ_CLOCK)
            received_at = self._clock()
            row = cur.fetchone()
        return ClockReading(float(row[0]), sent_at, received_at)
