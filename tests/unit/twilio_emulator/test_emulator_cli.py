"""The CLI's argument parsing: `serve` stays the default; callback flags; the `inbound` command."""

import pytest

from notifier.twilio_emulator.callback_plan import CallbackMode, CallbackRule, Shuffle
from notifier.twilio_emulator.config import DEFAULT_AUTH_TOKEN
from notifier.twilio_emulator.main import parse_args


def test_without_a_command_the_flags_are_the_servers() -> None:
    args = parse_args(["--port", "0", "--mps", "5"], {})
    assert (args.command, args.port, args.mps) == ("serve", 0, 5)
    settings = args.callback_settings
    assert (settings.enabled, settings.mode, settings.delays["read"]) == (
        True,
        CallbackMode.NORMAL,
        3.0,
    )
    assert parse_args([], {}).command == "serve"


def test_callback_flags_become_settings_and_rules() -> None:
    args = parse_args(
        [
            "serve",
            "--callback-mode=no_read",
            "--callback-shuffle=reverse",
            "--callback-duplicate",
            "--callback-speed=4",
            "--callback-delay=read=8",
            "--callback-rule=+447700900123=failed",
        ],
        {},
    )
    settings = args.callback_settings
    assert (settings.mode, settings.shuffle, settings.duplicate, settings.speed) == (
        CallbackMode.NO_READ,
        Shuffle.REVERSE,
        True,
        4.0,
    )
    assert settings.delay_of("read") == 2.0
    assert args.callback_rules == {"+447700900123": CallbackRule(mode=CallbackMode.FAILED)}
    assert parse_args(["--no-callbacks"], {}).callback_settings.enabled is False


@pytest.mark.parametrize(
    "flags",
    [
        ["--callback-delay", "seen=1"],
        ["--callback-delay", "read=soon"],
        ["--callback-delay", "read"],
        ["--callback-rule", "+447700900123=sometimes"],
        ["--callback-speed", "0"],
        ["--callback-mode", "weird"],
        ["--callback-workers", "0"],
    ],
)
def test_bad_callback_flags_exit_with_usage(flags: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(flags, {})
    assert exited.value.code == 2


def test_the_inbound_command_has_its_own_flags_and_env_defaults() -> None:
    args = parse_args(["inbound", "--from", "+447700900123", "--body", "STOP"], {})
    assert (args.command, args.from_, args.body, args.to) == (
        "inbound",
        "+447700900123",
        "STOP",
        "+14155238886",
    )
    assert (args.webhook_url, args.auth_token) == (
        "http://127.0.0.1:8080/webhook/inbound",
        DEFAULT_AUTH_TOKEN,
    )
    env = {"PUBLIC_WEBHOOK_URL": "https://hooks.example.com/", "TWILIO_AUTH_TOKEN": "t"}
    from_env = parse_args(["inbound", "--from", "+447700900123", "--body", "hi"], env)
    assert (from_env.webhook_url, from_env.auth_token) == (
        "https://hooks.example.com/webhook/inbound",
        "t",
    )


def test_inbound_requires_from_and_body() -> None:
    with pytest.raises(SystemExit):
        parse_args(["inbound", "--body", "STOP"], {})
