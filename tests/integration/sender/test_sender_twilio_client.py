"""The Twilio client (the real SDK over HTTP) against the emulator: `go()` at the write.

The pacing question "is this call still in its slot?" is asked after the SDK has built the
request, right before it is written; a call given up there must leave Twilio untouched.
"""

from __future__ import annotations

import socket

import pytest

from notifier.sender.service import NotSent
from notifier.sender.settings import TwilioSettings
from notifier.sender.twilio_client import TwilioMessages
from notifier.twilio_emulator import EmulatorServer
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.unit.sender.sender_fakes import command

pytestmark = pytest.mark.integration

CALLBACK = "https://hooks.example.com/webhook/status?mid=1"


@pytest.fixture
def messages(emulator: EmulatorServer) -> TwilioMessages:
    settings = TwilioSettings(
        account_sid=DEFAULT_ACCOUNT_SID,
        auth_token=DEFAULT_AUTH_TOKEN,
        whatsapp_from="+14155238886",
        api_url=emulator.url,
        timeout_seconds=5,
    )
    return TwilioMessages(settings, pool_size=2)


def test_a_call_whose_go_says_yes_is_sent_and_go_is_asked_once(
    messages: TwilioMessages, emulator: EmulatorServer
) -> None:
    asked: list[int] = []

    def go() -> bool:
        asked.append(len(emulator.messages()))  # how many Twilio had when it was asked
        return True

    accepted = messages.create(command(1), CALLBACK, go)
    [recorded] = emulator.messages()
    assert accepted.sid == recorded.sid
    assert asked == [0]


def test_a_call_whose_go_says_no_raises_not_sent_and_reaches_nobody(
    messages: TwilioMessages, emulator: EmulatorServer
) -> None:
    with pytest.raises(NotSent):
        messages.create(command(1), CALLBACK, lambda: False)
    stats = emulator.stats()
    assert (stats.accepted, stats.throttled, stats.rejected_by_code) == (0, 0, {})
    # The gate was for that call only: the next one (and a fetch) go out as usual.
    accepted = messages.create(command(2), CALLBACK, lambda: True)
    assert messages.fetch(accepted.sid).status in {"queued", "sent", "delivered", "read"}
    assert len(emulator.messages()) == 1


def test_go_is_asked_once_a_new_connection_is_up_and_a_no_writes_nothing() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        host, port = listener.getsockname()
        settings = TwilioSettings(
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            whatsapp_from="+14155238886",
            api_url=f"http://{host}:{port}",
            timeout_seconds=5,
        )
        accepted: list[socket.socket] = []

        def go() -> bool:
            # The connection's set-up came first: it is waiting to be accepted.
            listener.settimeout(0)
            accepted.append(listener.accept()[0])
            return False

        with pytest.raises(NotSent):
            TwilioMessages(settings, pool_size=1).create(command(1), CALLBACK, go)
        [conn] = accepted
        with conn:
            conn.settimeout(2)
            assert conn.recv(1024) == b""  # closed without a byte of the request


def test_through_a_proxy_go_is_asked_before_sending_and_a_no_connects_to_nobody(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(1)
        host, port = proxy.getsockname()
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://{host}:{port}")
        settings = TwilioSettings(
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            whatsapp_from="+14155238886",
            api_url="http://api.twilio.test",
            timeout_seconds=5,
        )
        asked: list[bool] = []

        def go() -> bool:
            asked.append(True)
            return False

        with pytest.raises(NotSent):
            TwilioMessages(settings, pool_size=1).create(command(1), CALLBACK, go)
        assert asked == [True]
        proxy.settimeout(0)
        with pytest.raises(BlockingIOError):
            proxy.accept()  # no connection was even opened
