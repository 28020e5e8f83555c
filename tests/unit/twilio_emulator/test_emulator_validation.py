"""Create-message validation: Twilio's error codes, magic numbers and the `mid` we carry."""

import json

import pytest

from notifier.twilio_emulator import catalog
from notifier.twilio_emulator.catalog import TwilioError
from notifier.twilio_emulator.validation import (
    CreateRequest,
    parse_content_variables,
    parse_create,
    parse_mid,
    split_channel,
)

SENDER = "whatsapp:+14155238886"
RECIPIENT = "whatsapp:+447700900123"
CONTENT_SID = "HX" + "b" * 32
SERVICE_SID = "MG" + "c" * 32


def form(**fields: str) -> dict[str, str]:
    base = {"To": RECIPIENT, "From": SENDER, "ContentSid": CONTENT_SID}
    base.update(fields)
    return {k: v for k, v in base.items() if v != "<drop>"}


def error_code(result: CreateRequest | TwilioError) -> int:
    assert isinstance(result, TwilioError), result
    return result.code


def test_a_content_template_send_is_accepted_with_its_variables_and_mid() -> None:
    result = parse_create(
        form(
            ContentVariables=json.dumps({"1": "ORD-1", "2": "tomorrow"}),
            StatusCallback="https://hooks.example.com/webhook/status?mid=42",
        )
    )
    assert isinstance(result, CreateRequest)
    assert result.content_variables == {"1": "ORD-1", "2": "tomorrow"}
    assert result.mid == "42"
    assert result.sender == SENDER


def test_a_messaging_service_is_a_sender_of_its_own() -> None:
    result = parse_create(form(From="<drop>", MessagingServiceSid=SERVICE_SID))
    assert isinstance(result, CreateRequest)
    assert result.sender == SERVICE_SID
    assert result.from_ is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"To": "<drop>"}, 21604),
        ({"From": "<drop>"}, 21603),
        ({"From": "<drop>", "MessagingServiceSid": "MG123"}, 21705),
        ({"To": "whatsapp:0044770090"}, 21211),
        ({"To": "whatsapp:+44 7700 900123"}, 21211),
        ({"From": "whatsapp:twilio"}, 21212),
        ({"To": "+447700900123"}, 21910),
        ({"ContentSid": "<drop>"}, 21619),
        ({"ContentSid": "<drop>", "ContentVariables": '{"1": "a"}'}, 21654),
        ({"ContentSid": "<drop>", "Body": "x" * 1601}, 21617),
        ({"ContentSid": "HXnothex"}, 21655),
        ({"ContentVariables": "not json"}, 21656),
        ({"ContentVariables": '["a"]'}, 21656),
        ({"ContentVariables": '{"1": 5}'}, 21656),
        ({"ContentVariables": '{"1": ""}'}, 21656),
    ],
)
def test_invalid_requests_get_twilios_error_code(fields: dict[str, str], code: int) -> None:
    assert error_code(parse_create(form(**fields))) == code


def test_a_plain_body_without_a_template_is_accepted() -> None:
    result = parse_create(form(ContentSid="<drop>", Body="hello"))
    assert isinstance(result, CreateRequest)
    assert result.body == "hello"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
        ("+15005550010", 63024),
    ],
)
def test_magic_recipients_fail_like_twilio_test_credentials(number: str, code: int) -> None:
    for to, sender in ((f"whatsapp:{number}", SENDER), (number, "+14155238886")):
        result = parse_create(form(To=to, From=sender))
        assert isinstance(result, TwilioError)
        assert (result.status, result.code) == (400, code)


@pytest.mark.parametrize(
    ("number", "code"), [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611)]
)
def test_magic_senders_fail_like_twilio_test_credentials(number: str, code: int) -> None:
    assert error_code(parse_create(form(From=f"whatsapp:{number}"))) == code


def test_the_error_body_has_twilios_shape() -> None:
    error = catalog.too_many_requests()
    assert error.to_json() == {
        "code": 20429,
        "message": "Too Many Requests",
        "more_info": "https://www.twilio.com/docs/errors/20429",
        "status": 429,
    }


def test_mid_is_read_from_the_status_callback_query() -> None:
    assert parse_mid("https://h.example.com/webhook/status?x=1&mid=9001") == "9001"
    assert parse_mid("https://h.example.com/webhook/status") is None
    assert parse_mid(None) is None


def test_content_variables_must_be_an_object_of_non_empty_strings() -> None:
    assert parse_content_variables('{"1": "a", "2": "b"}') == {"1": "a", "2": "b"}
    assert parse_content_variables('{"1": null}') is None
    assert parse_content_variables("42") is None


def test_split_channel_knows_whatsapp_only() -> None:
    assert split_channel("whatsapp:+447700900123") == ("whatsapp", "+447700900123")
    assert split_channel("+447700900123") == ("", "+447700900123")
    assert split_channel("sms:+447700900123") == ("", "sms:+447700900123")
