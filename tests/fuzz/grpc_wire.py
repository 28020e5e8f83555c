"""Hand-made protobuf wire bytes: what no generated client sends, but a buggy or hostile one may.

Invalid UTF-8 in string fields (and in map keys and values), wire types that do not match
the field, overlong and 64-bit varints for int32 fields, truncated lengths, unknown and
impossible field numbers, random bytes, and valid requests with bytes flipped.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.fuzz.grpc_calls import REQUESTS

INVALID_UTF8 = (
    b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"abc\xfe",
    b"\x80", b"+44\xff7700900123", b"order_\xc3",
)  # fmt: skip
VALID = {
    "SendTemplateMessage": REQUESTS["SendTemplateMessage"][0](
        phone_number="+447700900123",
        template_id="order_confirmation",
        parameters={"order_id": "ORD-1"},
    ),
    "GetMessage": REQUESTS["GetMessage"][0](message_id=1),
    "ListMessages": REQUESTS["ListMessages"][0](order_id="ORD-1", limit=5, status=1),
    "SendSessionMessage": REQUESTS["SendSessionMessage"][0](
        phone_number="+447700900123", body="Hello"
    ),
    "GetOrderTimeline": REQUESTS["GetOrderTimeline"][0](order_id="ORD-1"),
}


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers go out as ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def length_delimited(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def string_fields(method: str) -> list[int]:
    descriptor = REQUESTS[method][0].DESCRIPTOR
    return [f.number for f in descriptor.fields if f.type == f.TYPE_STRING]


def map_fields(method: str) -> list[int]:
    descriptor = REQUESTS[method][0].DESCRIPTOR
    return [f.number for f in descriptor.fields if f.message_type is not None]


@st.composite
def invalid_utf8(draw: st.DrawFn, method: str) -> bytes:
    """A valid request plus one string (or map key/value) holding invalid UTF-8."""
    bad = draw(st.sampled_from(INVALID_UTF8))
    targets = [("field", n) for n in string_fields(method)]
    targets += [("map", n) for n in map_fields(method)]
    if not targets:  # GetMessage: an unknown string field, which protobuf must skip
        return bytes(VALID[method].SerializeToString()) + length_delimited(15, bad)
    kind, number = draw(st.sampled_from(targets))
    if kind == "field":
        payload = length_delimited(number, bad)
    else:
        key, value = draw(st.sampled_from([(bad, b"v"), (b"order_id", bad), (bad, bad)]))
        payload = length_delimited(number, length_delimited(1, key) + length_delimited(2, value))
    return bytes(VALID[method].SerializeToString()) + payload


@st.composite
def odd_fields(draw: st.DrawFn) -> bytes:
    """One field with any wire type, number and payload, valid or not."""
    field = draw(st.sampled_from((1, 2, 3, 4, 5, 6, 15, 16, 2047, 536_870_911, 0, 19_000)))
    wire_type = draw(st.integers(0, 7))
    if wire_type == 0:
        body = varint(draw(st.integers(-(2**63), 2**64 - 1)))
        body = draw(st.sampled_from((body, b"\xff" * 11, b"\x80")))
    elif wire_type == 1:
        body = draw(st.binary(min_size=0, max_size=8))
    elif wire_type == 2:
        payload = draw(st.binary(max_size=40))
        claimed = draw(st.sampled_from((len(payload), len(payload) + 1, 2**31, 2**35)))
        body = varint(claimed) + payload
    elif wire_type == 5:
        body = draw(st.binary(min_size=0, max_size=4))
    else:  # 3/4 are groups (gone in proto3), 6 and 7 do not exist
        body = draw(st.binary(max_size=8))
    return tag(field, wire_type) + body


@st.composite
def mutated(draw: st.DrawFn, method: str) -> bytes:
    """A valid request with a few bytes overwritten, inserted or deleted."""
    data = bytearray(VALID[method].SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(("set", "insert", "delete")))
        byte = draw(st.integers(0, 255))
        if operation == "insert" or position == len(data):
            data.insert(position, byte)
        elif operation == "set":
            data[position] = byte
        else:
            del data[position]
    return bytes(data)


def wire_requests() -> st.SearchStrategy[tuple[str, bytes]]:
    """(method, serialized request) for every RPC."""

    def for_method(method: str) -> st.SearchStrategy[tuple[str, bytes]]:
        valid = VALID[method].SerializeToString()
        data = st.one_of(
            invalid_utf8(method),
            mutated(method),
            st.binary(max_size=300),
            st.lists(odd_fields(), min_size=1, max_size=4).map(b"".join),
            odd_fields().map(lambda extra: valid + extra),
        )
        return data.map(lambda d: (method, d))

    return st.sampled_from(sorted(REQUESTS)).flatmap(for_method)
