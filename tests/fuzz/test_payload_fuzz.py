"""Poison records: whatever bytes sit on a topic, decoding raises PayloadError or succeeds.

The sender and the recorder dead-letter a record exactly when decoding raises PayloadError
(tests/integration/sender and tests/integration/recorder show that record reaching the
dead-letter topic and the consumer going on). Any other exception would skip the
dead-letter topic: it would stop the sender's poll loop, or hold the recorder's partition
while the batch is retried forever. Pure: no broker, no database.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.common.domain.messages import InboundMessage, SendCommand, StatusChange
from notifier.common.payloads import PayloadError, decode_event, decode_send_command
from notifier.common.pb import events_pb2
from tests.fuzz.budget import CaseCount, fuzz_settings, fuzz_timeout
from tests.fuzz.grpc_inputs import NASTY
from tests.fuzz.grpc_wire import INVALID_UTF8, length_delimited, odd_fields, varint

pytestmark = pytest.mark.fuzz

BUDGET = {"bytes": 1500, "fields": 1500}
_TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.just(""))
_INT64 = st.one_of(
    st.sampled_from((0, -1, 1, 2**63 - 1, -(2**63))), st.integers(-(2**63), 2**63 - 1)
)
_INT32 = st.one_of(
    st.sampled_from((0, -1, 7, 8, 2**31 - 1, -(2**31))), st.integers(-(2**31), 2**31 - 1)
)
# Seconds and nanos around the edges of what a Timestamp may hold (years 1 to 9999).
_SECONDS = st.one_of(
    st.sampled_from((0, -62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800)),
    _INT64,
)
_NANOS = st.one_of(st.sampled_from((0, -1, 999_999_999, 1_000_000_000)), _INT32)


def decodes_or_payload_error(decode: Callable[[bytes], object], data: bytes) -> object | None:
    try:
        return decode(data)
    except PayloadError:
        return None


@st.composite
def timestamps(draw: st.DrawFn, message: object) -> None:
    if draw(st.booleans()):
        message.seconds = draw(_SECONDS)  # type: ignore[attr-defined]
        message.nanos = draw(_NANOS)  # type: ignore[attr-defined]


@st.composite
def send_commands(draw: st.DrawFn) -> bytes:
    pb = events_pb2.SendCommand(
        message_id=draw(_INT64),
        to=draw(st.one_of(_TEXT, st.just("+447700900123"))),
        template_id=draw(_TEXT),
        content_sid=draw(st.one_of(_TEXT, st.just("HX1"))),
        content_variables=draw(st.dictionaries(_TEXT, _TEXT, max_size=4)),
        body=draw(_TEXT),
    )
    draw(timestamps(pb.accepted_at))
    return pb.SerializeToString()


@st.composite
def events(draw: st.DrawFn) -> bytes:
    event = events_pb2.Event()
    kind = draw(st.sampled_from(("send_result", "status_callback", "inbound_message", "none")))
    if kind in ("send_result", "status_callback"):
        payload = getattr(event, kind)
        payload.message_id = draw(_INT64)
        payload.status = draw(_INT32)
        payload.twilio_sid = draw(_TEXT)
        payload.error_code = draw(_INT32)
        payload.error_message = draw(_TEXT)
        stamp = payload.occurred_at if kind == "send_result" else payload.received_at
        draw(timestamps(stamp))
    elif kind == "inbound_message":
        inbound = event.inbound_message
        for name in ("twilio_sid", "from_number", "to_number", "body", "opt_out_type"):
            setattr(inbound, name, draw(st.one_of(_TEXT, st.just("+447700900123"))))
        inbound.num_media = draw(_INT32)
        draw(timestamps(inbound.received_at))
    return event.SerializeToString()


def wire_bytes(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, odd fields, invalid UTF-8 strings, and valid records cut or extended."""
    return st.one_of(
        st.binary(max_size=200),
        st.lists(odd_fields(), min_size=1, max_size=4).map(b"".join),
        st.tuples(st.integers(1, 12), st.sampled_from(INVALID_UTF8)).map(
            lambda f: length_delimited(*f)
        ),
        st.tuples(valid, st.integers(0, 64)).map(lambda v: v[0][: v[1]]),
        st.tuples(valid, odd_fields()).map(lambda v: v[0] + v[1]),
        # An Event whose payload is a message of nonsense.
        st.tuples(st.integers(1, 3), st.binary(max_size=60)).map(
            lambda f: length_delimited(f[0], f[1])
        ),
        st.just(varint(2**64 - 1)),
    )


@fuzz_timeout(60)
def test_any_bytes_decode_to_a_command_or_to_a_payload_error() -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["bytes"])
    @given(wire_bytes(send_commands()), wire_bytes(events()))
    def case(command: bytes, event: bytes) -> None:
        cases.tick()
        decoded = decodes_or_payload_error(decode_send_command, command)
        assert decoded is None or isinstance(decoded, SendCommand)
        decoded = decodes_or_payload_error(decode_event, event)
        assert decoded is None or isinstance(decoded, StatusChange | InboundMessage)

    case()
    cases.assert_at_least(BUDGET["bytes"])


@fuzz_timeout(60)
def test_well_formed_records_with_any_values_decode_or_raise_a_payload_error() -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["fields"])
    @given(send_commands(), events())
    def case(command: bytes, event: bytes) -> None:
        cases.tick()
        decoded = decodes_or_payload_error(decode_send_command, command)
        if isinstance(decoded, SendCommand):
            assert decoded.message_id > 0 and decoded.to.startswith("+")
            assert (decoded.content_sid is None) != (decoded.body is None)
        decoded = decodes_or_payload_error(decode_event, event)
        if isinstance(decoded, StatusChange):
            assert decoded.message_id is None or decoded.message_id > 0
            assert decoded.message_id is not None or decoded.twilio_sid
        elif isinstance(decoded, InboundMessage):
            assert decoded.from_number.startswith("+") and decoded.num_media >= 0

    case()
    cases.assert_at_least(BUDGET["fields"])
