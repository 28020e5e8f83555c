"""The forms Twilio posts: status callbacks per status and channel, incoming messages, keywords."""

import pytest

from notifier.twilio_emulator.catalog import OUTSIDE_WINDOW, UNKNOWN_ERROR
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID
from notifier.twilio_emulator.ledger import RecordedMessage
from notifier.twilio_emulator.webhook_client import is_reserved_host, signature
from notifier.twilio_emulator.webhook_forms import (
    channel_install_sid,
    inbound_form,
    opt_out_type,
    status_callback_form,
)

SID = "SM" + "ab" * 16


def message(
    to: str = "whatsapp:+447700900123",
    from_: str | None = "whatsapp:+14155238886",
    service: str | None = None,
) -> RecordedMessage:
    return RecordedMessage(
        sid=SID,
        account_sid=DEFAULT_ACCOUNT_SID,
        arrived_at=0.0,
        to=to,
        from_=from_,
        messaging_service_sid=service,
        content_sid="HX" + "a" * 32,
        content_variables=None,
        body=None,
        status_callback="https://hooks.example.com/webhook/status?mid=1",
        mid="1",
        status="queued",
    )


def test_a_whatsapp_sent_callback_has_twilios_fields() -> None:
    form = status_callback_form(message(), "sent", None)
    assert form == {
        "SmsSid": SID,
        "SmsStatus": "sent",
        "MessageStatus": "sent",
        "ChannelToAddress": "+44770090XXXX",
        "To": "whatsapp:+447700900123",
        "ChannelPrefix": "whatsapp",
        "MessageSid": SID,
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "StructuredMessage": "false",
        "From": "whatsapp:+14155238886",
        "ApiVersion": "2010-04-01",
        "ChannelInstallSid": channel_install_sid(DEFAULT_ACCOUNT_SID),
    }


@pytest.mark.parametrize(
    ("status", "event"), [("delivered", "DELIVERED"), ("read", "READ"), ("failed", None)]
)
def test_post_delivery_events_carry_an_event_type(status: str, event: str | None) -> None:
    form = status_callback_form(message(), status, None)
    assert form.get("EventType") == event
    assert "StructuredMessage" not in form


def test_a_failure_carries_error_code_and_message() -> None:
    undelivered = status_callback_form(message(), "undelivered", UNKNOWN_ERROR)
    assert (undelivered["ErrorCode"], undelivered["ErrorMessage"]) == ("30008", "Unknown error")
    failed = status_callback_form(message(), "failed", OUTSIDE_WINDOW)
    assert failed["ErrorCode"] == "63016"


def test_a_messaging_service_message_names_its_service_and_no_from() -> None:
    service = "MG" + "c" * 32
    form = status_callback_form(message(from_=None, service=service), "sent", None)
    assert form["MessagingServiceSid"] == service
    assert "From" not in form


def test_an_sms_callback_has_no_channel_fields() -> None:
    form = status_callback_form(message(to="+447700900123", from_="+14155238886"), "read", None)
    assert not {k for k in form if k.startswith("Channel") or k == "EventType"}


def test_channel_install_sid_is_an_xe_sid_stable_per_account() -> None:
    sid = channel_install_sid(DEFAULT_ACCOUNT_SID)
    assert sid.startswith("XE") and len(sid) == 34
    assert sid == channel_install_sid(DEFAULT_ACCOUNT_SID) != channel_install_sid("AC" + "1" * 32)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        *[(k, "STOP") for k in ("STOP", "stopall", "Unsubscribe", "cancel", "END", "quit")],
        *[(k, "START") for k in ("start", "YES", "unstop")],
        *[(k, "HELP") for k in ("help", "INFO")],
        ("  Stop\n", "STOP"),
        ("stop now", None),
        ("", None),
    ],
)
def test_opt_out_type_follows_twilios_default_keywords(body: str, expected: str | None) -> None:
    assert opt_out_type(body) == expected


def test_an_inbound_form_is_a_whatsapp_text_from_the_customer() -> None:
    form = inbound_form(
        account_sid=DEFAULT_ACCOUNT_SID,
        from_="+447700900123",
        to="whatsapp:+14155238886",
        body="STOP",
        profile_name="Ada",
        sid=SID,
    )
    assert form == {
        "SmsMessageSid": SID,
        "NumMedia": "0",
        "ProfileName": "Ada",
        "MessageType": "text",
        "SmsSid": SID,
        "WaId": "447700900123",
        "SmsStatus": "received",
        "Body": "STOP",
        "To": "whatsapp:+14155238886",
        "OptOutType": "STOP",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": SID,
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "From": "whatsapp:+447700900123",
        "ApiVersion": "2010-04-01",
    }


def test_without_advanced_opt_out_a_keyword_has_no_opt_out_type() -> None:
    form = inbound_form(
        account_sid=DEFAULT_ACCOUNT_SID,
        from_="+447700900123",
        to="+14155238886",
        body="STOP",
        advanced_opt_out=False,
    )
    assert "OptOutType" not in form
    assert form["MessageSid"].startswith("SM") and form["MessageSid"] == form["SmsSid"]


def test_a_quick_reply_has_button_text_and_payload() -> None:
    form = inbound_form(
        account_sid=DEFAULT_ACCOUNT_SID,
        from_="+447700900123",
        to="+14155238886",
        body="Yes please",
        button_payload="CONFIRM",
    )
    assert (form["MessageType"], form["ButtonText"], form["ButtonPayload"]) == (
        "button",
        "Yes please",
        "CONFIRM",
    )


def test_signatures_are_twilios_hmac_over_url_and_sorted_params() -> None:
    # The example from Twilio's webhook-security docs, signed with its documented token.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert signature(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize(
    ("url", "reserved"),
    [
        ("https://hooks.example.com/webhook/status", True),
        ("http://example.org/x", True),
        ("http://api.test/x", True),
        ("http://hooks.invalid/x", True),
        ("http://127.0.0.1:8080/webhook/status?mid=1", False),
        ("http://localhost:8080/x", False),
        ("https://notexample.com/x", False),
    ],
)
def test_documentation_hosts_are_recognised(url: str, reserved: bool) -> None:
    assert is_reserved_host(url) is reserved
