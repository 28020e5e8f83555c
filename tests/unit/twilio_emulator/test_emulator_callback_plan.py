"""Which callbacks a message gets and when: modes, delays, shuffle, duplicates, rules, config."""

import random

import pytest

from notifier.twilio_emulator.callback_plan import (
    CallbackConfigError,
    CallbackMode,
    CallbackRule,
    CallbackSettings,
    PlannedCallback,
    Shuffle,
    plan_callbacks,
    rule_for,
)
from notifier.twilio_emulator.catalog import OUTSIDE_WINDOW, UNKNOWN_ERROR
from notifier.twilio_emulator.config import ConfigError, EmulatorConfig, parse_update


def plan(settings: CallbackSettings, rule: CallbackRule | None = None) -> list[PlannedCallback]:
    return plan_callbacks(settings, rule, random.Random(7))


def shape(planned: list[PlannedCallback]) -> list[tuple[str, float]]:
    return [(p.status, p.delay) for p in planned]


def test_the_default_plan_is_sent_delivered_read_at_realistic_delays() -> None:
    assert shape(plan(CallbackSettings())) == [("sent", 0.2), ("delivered", 1.0), ("read", 3.0)]
    assert all(p.error is None for p in plan(CallbackSettings()))


@pytest.mark.parametrize(
    ("mode", "statuses"),
    [
        (CallbackMode.NO_READ, ["sent", "delivered"]),
        (CallbackMode.UNDELIVERED, ["sent", "undelivered"]),
        (CallbackMode.FAILED, ["failed"]),
        (CallbackMode.NONE, []),
    ],
)
def test_each_mode_plans_its_statuses(mode: CallbackMode, statuses: list[str]) -> None:
    assert [p.status for p in plan(CallbackSettings(mode=mode))] == statuses


def test_failures_carry_twilios_error_codes() -> None:
    undelivered = plan(CallbackSettings(mode=CallbackMode.UNDELIVERED))[-1]
    failed = plan(CallbackSettings(mode=CallbackMode.FAILED))[0]
    assert (undelivered.error, failed.error) == (UNKNOWN_ERROR, OUTSIDE_WINDOW)
    assert (UNKNOWN_ERROR.code, OUTSIDE_WINDOW.code) == (30008, 63016)


def test_speed_divides_the_delays_and_explicit_delays_replace_them() -> None:
    fast = CallbackSettings(speed=10)
    assert shape(plan(fast)) == [("sent", 0.02), ("delivered", 0.1), ("read", 0.3)]
    custom = CallbackSettings().updated({"delays": {"read": 0.5}})
    assert shape(plan(custom))[2] == ("read", 0.5)
    assert custom.delays["sent"] == 0.2


def test_reverse_shuffle_swaps_the_time_slots() -> None:
    reverse = CallbackSettings(shuffle=Shuffle.REVERSE)
    assert shape(plan(reverse)) == [("read", 0.2), ("delivered", 1.0), ("sent", 3.0)]


def test_random_shuffle_is_never_the_planned_order() -> None:
    settings = CallbackSettings(shuffle=Shuffle.RANDOM)
    for seed in range(30):
        order = [p.status for p in plan_callbacks(settings, None, random.Random(seed))]
        assert sorted(order) == ["delivered", "read", "sent"]
        assert order != ["sent", "delivered", "read"]


def test_duplicate_plans_each_callback_twice_at_the_same_time() -> None:
    planned = shape(plan(CallbackSettings(duplicate=True, mode=CallbackMode.NO_READ)))
    assert planned == [("sent", 0.2), ("sent", 0.2), ("delivered", 1.0), ("delivered", 1.0)]


def test_a_rule_overrides_only_what_it_names() -> None:
    settings = CallbackSettings(duplicate=True)
    rule = CallbackRule(mode=CallbackMode.FAILED)
    assert shape(plan(settings, rule)) == [("failed", 0.2), ("failed", 0.2)]
    assert len(plan(settings, CallbackRule(duplicate=False))) == 3


def test_rules_match_the_whatsapp_address_or_the_bare_number() -> None:
    bare, exact = CallbackRule(mode=CallbackMode.NONE), CallbackRule(mode=CallbackMode.FAILED)
    rules = {"+447700900123": bare, "whatsapp:+447700900999": exact}
    assert rule_for("whatsapp:+447700900123", rules) is bare
    assert rule_for("whatsapp:+447700900999", rules) is exact
    assert rule_for("whatsapp:+447700900000", rules) is None


def test_settings_accept_json_spellings() -> None:
    settings = CallbackSettings().updated(
        {"mode": "no_read", "shuffle": True, "duplicate": True, "speed": 2, "attempts": 1}
    )
    assert (settings.mode, settings.shuffle, settings.duplicate) == (
        CallbackMode.NO_READ,
        Shuffle.RANDOM,
        True,
    )
    assert settings.updated({"shuffle": False}).shuffle is Shuffle.OFF
    assert CallbackSettings(mode="failed").mode is CallbackMode.FAILED  # type: ignore[arg-type]
    assert CallbackSettings().updated(CallbackSettings(speed=3).to_json()).speed == 3


@pytest.mark.parametrize(
    "raw",
    [
        {"mode": "sometimes"},
        {"shuffle": "sideways"},
        {"duplicate": "yes"},
        {"enabled": 1},
        {"delays": {"seen": 1}},
        {"delays": {"read": -1}},
        {"delays": [1, 2]},
        {"speed": 0},
        {"attempts": 0},
        {"attempts": 1.5},
        {"timeout": "5"},
        {"colour": "blue"},
    ],
)
def test_bad_callback_settings_name_the_problem(raw: dict[str, object]) -> None:
    with pytest.raises(CallbackConfigError):
        CallbackSettings().updated(raw)


def test_config_updates_merge_callback_rules_and_null_removes_one() -> None:
    config = EmulatorConfig()
    first = parse_update(config, {"callback_rules": {"+447700900123": {"mode": "failed"}}}).config
    second = parse_update(
        first, {"callback_rules": {"+447700900999": {"shuffle": "reverse", "duplicate": True}}}
    ).config
    assert set(second.callback_rules) == {"+447700900123", "+447700900999"}
    assert second.callback_rules["+447700900999"] == CallbackRule(None, Shuffle.REVERSE, True)
    third = parse_update(second, {"callback_rules": {"+447700900123": None}}).config
    assert set(third.callback_rules) == {"+447700900999"}
    assert third.to_json()["callback_rules"] == {
        "+447700900999": {"shuffle": "reverse", "duplicate": True}
    }


def test_config_updates_change_callback_settings_and_report_them() -> None:
    update = parse_update(EmulatorConfig(), {"callbacks": {"enabled": False, "mode": "no_read"}})
    callbacks = update.config.to_json()["callbacks"]
    assert isinstance(callbacks, dict)
    assert (callbacks["enabled"], callbacks["mode"]) == (False, "no_read")


@pytest.mark.parametrize(
    "raw",
    [
        {"callbacks": {"mode": "x"}},
        {"callbacks": []},
        {"callback_rules": []},
        {"callback_rules": {"+447700900123": {"mode": "x"}}},
        {"callback_rules": {"+447700900123": {"delays": {}}}},
    ],
)
def test_bad_callback_config_is_a_config_error(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_update(EmulatorConfig(), raw)
