"""Twilio's form fields -> StatusChange / InboundMessage, or why they are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifier.common.domain.ids import MessageId, TwilioSid
from notifier.common.domain.messages import InboundMessage, Source, StatusChange
from notifier.common.domain.status import MessageStatus
from notifier.common.errors import InvalidRequest
from notifier.webhook.forms import (
    Ignored,
    Kind,
    kind_of,
    parse,
    parse_inbound_message,
    parse_status_callback,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SID = "SM" + "0123456789abcdef" * 2
MEDIA_SID = "MM" + "fedcba9876543210" * 2


def status_form(**fields: str) -> dict[str, str]:
    # What Twilio posts for a WhatsApp status callback (fields as of 2025).
    form = {
        "MessageSid": SID,
        "SmsSid": SID,
        "AccountSid": "AC" + "1" * 32,
        "From": "whatsapp:+14155238886",
        "To": "whatsapp:+447700900123",
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "ApiVersion": "2010-04-01",
        "ChannelPrefix": "whatsapp",
        "ChannelInstallSid": "XE" + "2" * 32,
        "ChannelToAddress": "+4477009XXXXX",
    }
    form.update(fields)
    return form


def inbound_form(**fields: str) -> dict[str, str]:
    form = {
        "MessageSid": SID,
        "SmsMessageSid": SID,
        "AccountSid": "AC" + "1" * 32,
        "MessagingServiceSid": "MG" + "3" * 32,
        "From": "whatsapp:+447700900123",
        "To": "whatsapp:+14155238886",
        "Body": "STOP",
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Ada",
        "WaId": "447700900123",
        "SmsStatus": "received",
        "OptOutType": "STOP",
        "ApiVersion": "2010-04-01",
    }
    form.update(fields)
    return form


def test_a_status_callback_becomes_a_twilio_status_change() -> None:
    change = parse_status_callback(status_form(), "42", NOW)
    assert change == StatusChange(
        message_id=MessageId(42),
        twilio_sid=TwilioSid(SID),
        status=MessageStatus.DELIVERED,
        occurred_at=NOW,
        source=Source.TWILIO,
    )


def test_a_failed_callback_keeps_twilios_error_code_and_message() -> None:
    form = status_form(
        MessageStatus="undelivered", ErrorCode="63016", ErrorMessage="Outside window"
    )
    change = parse_status_callback(form, "7", NOW)
    assert isinstance(change, StatusChange)
    assert (change.status, change.error_code, change.error_message) == (
        MessageStatus.UNDELIVERED,
        63016,
        "Outside window",
    )


def test_a_callback_without_mid_is_identified_by_its_sid_alone() -> None:
    change = parse_status_callback(status_form(), None, NOW)
    assert isinstance(change, StatusChange)
    assert (change.message_id, change.twilio_sid) == (None, SID)


@pytest.mark.parametrize("mid", ["0", "-1", "abc", "1.5", "", " ", "99999999999999999999"])
def test_a_mid_that_is_not_a_positive_integer_is_refused(mid: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_status_callback(status_form(), mid, NOW)
    assert caught.value.field == "mid"


@pytest.mark.parametrize("sid", ["", "SM123", "AC" + "0" * 32, "SM" + "g" * 32, SID + "0"])
def test_a_missing_or_malformed_message_sid_is_refused(sid: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_status_callback(status_form(MessageSid=sid), "1", NOW)
    assert caught.value.field == "MessageSid"


def test_a_media_message_sid_is_accepted() -> None:
    change = parse_status_callback(status_form(MessageSid=MEDIA_SID), "1", NOW)
    assert isinstance(change, StatusChange)
    assert change.twilio_sid == MEDIA_SID


def test_a_non_numeric_error_code_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_status_callback(status_form(ErrorCode="oops"), "1", NOW)
    assert caught.value.field == "ErrorCode"


def test_a_status_twilio_added_recently_is_ignored_not_refused() -> None:
    outcome = parse_status_callback(status_form(MessageStatus="partially_delivered"), "1", NOW)
    assert isinstance(outcome, Ignored)
    assert outcome.reason == "unknown_status"
    assert "partially_delivered" in outcome.detail


def test_parameters_we_do_not_use_are_ignored() -> None:
    plain = parse_status_callback(status_form(), "1", NOW)
    extended = parse_status_callback(
        status_form(RawDlrDoneDate="2511251200", NewField2030="x", StructuredMessage="false"),
        "1",
        NOW,
    )
    assert plain == extended


def test_an_inbound_message_loses_the_whatsapp_prefix_of_its_numbers() -> None:
    message = parse_inbound_message(inbound_form(), NOW)
    assert message == InboundMessage(
        twilio_sid=TwilioSid(SID),
        from_number="+447700900123",
        to_number="+14155238886",
        received_at=NOW,
        body="STOP",
        profile_name="Ada",
        wa_id="447700900123",
        num_media=0,
        opt_out_type="STOP",
        messaging_service_sid="MG" + "3" * 32,
    )


def test_an_inbound_message_keeps_the_button_the_customer_tapped() -> None:
    form = inbound_form(Body="Yes", ButtonPayload="confirm-42", ButtonText="Yes", OptOutType="")
    message = parse_inbound_message(form, NOW)
    assert (message.button_payload, message.button_text, message.opt_out_type) == (
        "confirm-42",
        "Yes",
        None,
    )


def test_an_sms_inbound_message_without_prefix_is_accepted() -> None:
    message = parse_inbound_message(inbound_form(From="+447700900123"), NOW)
    assert message.from_number == "+447700900123"


@pytest.mark.parametrize("field", ["From", "To"])
def test_an_inbound_message_with_a_bad_number_is_refused(field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_inbound_message(inbound_form(**{field: "whatsapp:not-a-number"}), NOW)
    assert caught.value.field == field


def test_the_body_and_profile_name_stay_out_of_the_repr() -> None:
    text = repr(parse_inbound_message(inbound_form(Body="my secret", ProfileName="Ada L"), NOW))
    assert "my secret" not in text
    assert "Ada L" not in text


@pytest.mark.parametrize(
    ("form", "kind"),
    [
        (status_form(), Kind.STATUS),
        (status_form(MessageStatus="read", SmsStatus="read"), Kind.STATUS),
        (inbound_form(), Kind.INBOUND),
        # An incoming message as Twilio posts it to the "A message comes in" URL may carry
        # MessageStatus=received as well.
        (inbound_form(MessageStatus="received"), Kind.INBOUND),
        ({"MessageSid": SID, "From": "+447700900123", "To": "+14155238886"}, Kind.INBOUND),
    ],
)
def test_the_webhook_tells_status_callbacks_from_inbound_messages(
    form: dict[str, str], kind: Kind
) -> None:
    assert kind_of(form) is kind


def test_a_form_that_is_neither_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        kind_of({"MessageSid": SID})


def test_parse_dispatches_by_kind() -> None:
    assert isinstance(parse(Kind.STATUS, status_form(), "1", NOW), StatusChange)
    assert isinstance(parse(Kind.INBOUND, inbound_form(), None, NOW), InboundMessage)
