"""The status a MessageTemplate shows: phase, message, observedGeneration, the Ready condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.operator.status import Phase, invalid, status_patch, stored, waiting

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def test_a_stored_template_is_ready_with_a_true_condition() -> None:
    patch = status_patch(stored("pickup_ready", True), 3, None, NOW)
    assert patch == {
        "phase": "Ready",
        "message": "template 'pickup_ready' is stored and enabled",
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Synced",
                "message": "template 'pickup_ready' is stored and enabled",
                "lastTransitionTime": "2025-05-01T12:00:00Z",
                "observedGeneration": 3,
            }
        ],
    }


def test_a_disabled_template_is_reconciled_but_shows_disabled() -> None:
    outcome = stored("pickup_ready", False)
    assert (outcome.phase, outcome.ready, outcome.reason) == (Phase.DISABLED, "True", "Disabled")


def test_invalid_and_waiting_are_not_ready() -> None:
    assert invalid("InvalidSpec", "spec.body: is required").ready == "False"
    assert waiting("waiting for PostgreSQL").phase is Phase.PENDING


def test_the_transition_time_is_kept_while_ready_does_not_flip() -> None:
    first = status_patch(stored("a", True), 1, None, NOW)
    again = status_patch(stored("a", True), 2, first, NOW + timedelta(hours=1))
    assert again["conditions"][0]["lastTransitionTime"] == "2025-05-01T12:00:00Z"  # type: ignore[index]


def test_the_transition_time_moves_when_ready_flips() -> None:
    first = status_patch(stored("a", True), 1, None, NOW)
    broken = status_patch(invalid("InvalidSpec", "x"), 2, first, NOW + timedelta(hours=1))
    assert broken["conditions"][0]["lastTransitionTime"] == "2025-05-01T13:00:00Z"  # type: ignore[index]


def test_without_a_generation_none_is_reported() -> None:
    assert "observedGeneration" not in status_patch(stored("a", True), None, None, NOW)
