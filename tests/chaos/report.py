"""The chaos run's summary: the counts and one line per fault, as Markdown tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.chaos.tally import table

if TYPE_CHECKING:
    from tests.chaos.harness import ChaosResult

_KINDS = {"normal": "", "undelivered": " (told to be undelivered)", "failed": " (told to fail)"}


def summary(result: ChaosResult) -> str:
    config, t = result.config, result.tally
    if result.settle_seconds is None:
        settle = f"not settled within {config.settle_seconds:.0f} s"
    else:
        settle = f"{result.settle_seconds:.1f} s"
    sender_faults = sum(1 for r in result.records if r.name in ("sender", "broker"))
    in_flight_bound = config.sender_concurrency * sender_faults
    dups = f"{len(t.duplicates)} ({t.extra_sends})"
    rows: list[tuple[str, object]] = [
        ("accepted (distinct ids)", t.accepted),
        ("accepts that needed a retry (same key)", t.retried_accepts),
        ("retries answered `duplicate: true` (accepted before)", t.duplicate_answers),
        ("not accepted (client gave up)", len(t.not_accepted)),
        ("sent to Twilio (distinct ids)", t.sent),
        ("create calls Twilio accepted", t.create_calls),
        ("duplicates: ids sent more than once (extra sends)", dups),
        ("in flight at the faults (Twilio had it, we did not know yet)", len(t.in_flight)),
        ("  cruder bound: sender concurrency x sender/broker faults", in_flight_bound),
        ("duplicates not in flight at any fault", len(t.unexplained_duplicates)),
    ]
    for kind, counts in sorted(t.statuses.items()):
        for status, n in counts.most_common():
            rows.append((f"final {status}{_KINDS[kind]}", n))
    rows += [
        ("lost (not stored, never sent or not final)", len(t.lost)),
        ("create calls throttled by Twilio (429)", t.throttled),
        ("status callbacks the webhook never took (the reconciler's work)", t.callbacks_failed),
        ("load duration", f"{result.load_seconds:.1f} s"),
        ("time to settle after the last accept", settle),
    ]
    faults = [
        (
            i,
            f.record.name,
            f"{f.record.at - result.load_started:.1f}",
            f"{f.record.recovery_seconds:.1f}",
            f.retried_accepts,
            len(f.in_flight),
            len(f.duplicates),
            f.record.note,
        )
        for i, f in enumerate(t.faults, start=1)
    ]
    verdict = "PASSED" if result.passed else "FAILED:\n  - " + "\n  - ".join(t.problems())
    header = (
        "#", "fault", "at (s)", "back after (s)", "accepts retried", "in flight", "duplicates",
        "note",
    )  # fmt: skip
    intro = (
        f"Chaos run: {config.messages} messages offered at {config.rate:g}/s by "
        f"{config.client_threads} client threads; faults one at a time: "
        f"{', '.join(config.faults)}."
    )
    return "\n\n".join([intro, table(rows, ("what", "count")), table(faults, header), verdict])
