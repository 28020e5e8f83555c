"""Bad input on the gRPC API: over 10,000 generated requests over a real channel to a real
gateway (PostgreSQL, broker), a few hundred grpcurl JSON bodies, and hand-made wire bytes.

Every answer is a code a caller can act on and names the field to fix; a rejected request
leaves no row, and the outbound topic ends up holding exactly the accepted messages. The
cases are a fixed sequence; budget.py says how to run more, or random ones.
"""

from __future__ import annotations

import json
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from notifier.common.domain.phone import normalise_e164
from notifier.common.errors import InvalidRequest
from notifier.common.pb import whatsapp_pb2
from notifier.common.pb.whatsapp_pb2_grpc import WhatsAppServiceStub
from notifier.gateway.main import RunningGateway
from tests.fuzz.budget import RANDOM, CaseCount, examples, fuzz_settings, fuzz_timeout
from tests.fuzz.gateway_state import Ledger, Rows
from tests.fuzz.grpc_calls import (
    OK,
    REQUESTS,
    SENDS,
    allowed_codes,
    assert_listed_as_asked,
    assert_stored_as_sent,
    build_within_limit,
    call,
    check_answer,
    check_request_id,
    raw_call,
)
from tests.fuzz.grpc_inputs import (
    clearly_bad_id,
    clearly_plain_id,
    int64s,
    list_requests,
    request_ids,
    send_requests,
    session_requests,
    timeline_requests,
)
from tests.fuzz.grpc_wire import VALID, length_delimited, wire_requests
from tests.fuzz.grpcurl_cases import bodies, grpcurl_executable, run_grpcurl
from tests.integration.gateway.gateway_support import TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

# Cases per test at FUZZ_EXAMPLES_SCALE=1: 12,524 gRPC requests, and 300 grpcurl bodies.
BUDGET = {
    "send": 4000,
    "get": 2000,
    "list": 2500,
    "session": 1200,
    "timeline": 800,
    "wire": 2000,
    "oversize": 24,
    "grpcurl": 300,
}
INVALID = grpc.StatusCode.INVALID_ARGUMENT
# How far past the size limit an oversized request goes, in bytes.
OVERSHOOT = (1, 2, 100, 65_536, 1_000_000, 3_000_000)
_ID_FIELDS = ("order_id", "customer_id", "idempotency_key")


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> WhatsAppServiceStub:
    return WhatsAppServiceStub(channel)


@pytest.fixture(scope="module")
def max_bytes(gateway: RunningGateway) -> int:
    return gateway.settings.max_message_bytes


@fuzz_timeout(120)
def test_send_template_message_answers_any_input_and_writes_only_what_it_accepts(
    stub: WhatsAppServiceStub, rows: Rows, topic: TopicReader, ledger: Ledger, max_bytes: int
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["send"])
    @given(send_requests())
    def case(drawn: tuple[dict[str, Any], frozenset[str]]) -> None:
        fields, replaced = drawn
        request, size = build_within_limit(
            whatsapp_pb2.SendTemplateMessageRequest, fields, max_bytes
        )
        cases.tick()
        before = rows.counts()
        outcome = call(stub.SendTemplateMessage, request)
        check_answer("SendTemplateMessage", outcome, size, max_bytes, fields["phone_number"])
        if not replaced:
            assert outcome.code == OK, f"a valid request was refused: {outcome.details[:300]!r}"
        if replaced == {"phone_number"}:
            # Accepted exactly when the reference normalisation accepts the number.
            assert (outcome.code == OK) == is_e164(fields["phone_number"]), outcome
        if any(clearly_bad_id(fields[f]) for f in _ID_FIELDS) or len(fields["parameters"]) > 32:
            assert outcome.code == INVALID, outcome
        if ledger.check_write(outcome, before, rows):
            assert_stored_as_sent(stub, outcome.response.message_id, fields)

    case()
    cases.assert_at_least(BUDGET["send"])
    ledger.assert_topic_holds_only_accepted(topic, rows, stub)


@fuzz_timeout(60)
def test_get_message_answers_any_id(stub: WhatsAppServiceStub, rows: Rows, max_bytes: int) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["get"])
    @given(int64s(), request_ids())
    def case(message_id: int, request_id: str | None) -> None:
        cases.tick()
        request = whatsapp_pb2.GetMessageRequest(message_id=message_id)
        metadata = () if request_id is None else (("x-request-id", request_id),)
        outcome = call(stub.GetMessage, request, metadata)
        check_answer("GetMessage", outcome, request.ByteSize(), max_bytes)
        check_request_id(outcome, request_id)
        if message_id <= 0:
            assert outcome.code == INVALID
        elif rows.exists(message_id):
            assert outcome.code == OK and outcome.response.message.message_id == message_id
        else:
            assert outcome.code == grpc.StatusCode.NOT_FOUND

    case()
    cases.assert_at_least(BUDGET["get"])


@fuzz_timeout(60)
def test_list_messages_answers_any_filter_and_page(
    stub: WhatsAppServiceStub, max_bytes: int
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["list"])
    @given(list_requests())
    def case(fields: dict[str, Any]) -> None:
        request, size = build_within_limit(whatsapp_pb2.ListMessagesRequest, fields, max_bytes)
        cases.tick()
        outcome = call(stub.ListMessages, request)
        check_answer("ListMessages", outcome, size, max_bytes)
        ids = (fields["order_id"], fields["customer_id"])
        if (
            fields["limit"] < 0
            or fields["offset"] < 0
            or not 0 <= fields["status"] <= 7
            or any(clearly_bad_id(i) for i in ids)
        ):
            assert outcome.code == INVALID, outcome
        elif all(clearly_plain_id(i) for i in ids):
            assert outcome.code == OK, outcome
        if outcome.code == OK:
            assert_listed_as_asked(outcome.response.messages, fields)

    case()
    cases.assert_at_least(BUDGET["list"])


@fuzz_timeout(60)
def test_send_session_message_answers_any_input_and_writes_only_what_it_accepts(
    stub: WhatsAppServiceStub, rows: Rows, topic: TopicReader, ledger: Ledger, max_bytes: int
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["session"])
    @given(session_requests())
    def case(fields: dict[str, Any]) -> None:
        request, size = build_within_limit(
            whatsapp_pb2.SendSessionMessageRequest, fields, max_bytes
        )
        cases.tick()
        before = rows.counts()
        outcome = call(stub.SendSessionMessage, request)
        check_answer("SendSessionMessage", outcome, size, max_bytes, fields["phone_number"])
        ledger.check_write(outcome, before, rows)

    case()
    cases.assert_at_least(BUDGET["session"])
    ledger.assert_topic_holds_only_accepted(topic, rows, stub)


@fuzz_timeout(60)
def test_get_order_timeline_answers_any_order_id(stub: WhatsAppServiceStub, max_bytes: int) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["timeline"])
    @given(timeline_requests())
    def case(fields: dict[str, Any]) -> None:
        request, size = build_within_limit(whatsapp_pb2.GetOrderTimelineRequest, fields, max_bytes)
        cases.tick()
        outcome = call(stub.GetOrderTimeline, request)
        check_answer("GetOrderTimeline", outcome, size, max_bytes)

    case()
    cases.assert_at_least(BUDGET["timeline"])


def is_e164(raw: str) -> bool:
    try:
        normalise_e164(raw)
    except InvalidRequest:
        return False
    return True


def parses(method: str, data: bytes) -> bool:
    try:
        REQUESTS[method][0].FromString(data)
    except Exception:
        return False
    return True


@fuzz_timeout(60)
def test_any_bytes_on_the_wire_get_an_answer_a_caller_can_act_on(
    channel: grpc.Channel,
    stub: WhatsAppServiceStub,
    rows: Rows,
    topic: TopicReader,
    ledger: Ledger,
    max_bytes: int,
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["wire"])
    @given(wire_requests())
    def case(drawn: tuple[str, bytes]) -> None:
        method, data = drawn
        cases.tick()
        before = rows.counts()
        outcome = raw_call(channel, method, data)
        undecodable = not parses(method, data)
        check_answer(method, outcome, len(data), max_bytes, undecodable=undecodable)
        if method in SENDS and outcome.code != grpc.StatusCode.UNIMPLEMENTED:
            ledger.check_write(outcome, before, rows)
        else:
            assert rows.counts() == before

    case()
    cases.assert_at_least(BUDGET["wire"])
    ledger.assert_topic_holds_only_accepted(topic, rows, stub)


@fuzz_timeout(60)
def test_a_request_over_the_size_limit_is_resource_exhausted(
    channel: grpc.Channel, rows: Rows, max_bytes: int
) -> None:
    cases = CaseCount()

    @fuzz_settings(BUDGET["oversize"])
    @given(
        st.sampled_from(sorted(REQUESTS)),
        st.sampled_from(OVERSHOOT),
        st.sampled_from(("x", "😀", "\x00", "'")),
        st.booleans(),
    )
    def case(method: str, overshoot: int, unit: str, in_a_field: bool) -> None:
        cases.tick()
        request = REQUESTS[method][0]()
        request.CopyFrom(VALID[method])
        strings = [f.name for f in request.DESCRIPTOR.fields if f.type == f.TYPE_STRING]
        target = max_bytes + overshoot
        if in_a_field and strings:
            field = strings[overshoot % len(strings)]
            setattr(request, field, unit * (target // len(unit.encode()) + 1))
            data = request.SerializeToString()
        else:  # GetMessage has no string field: an unknown one, which protobuf skips
            data = request.SerializeToString() + length_delimited(15, b"p" * target)
        before = rows.counts()
        outcome = raw_call(channel, method, data)
        check_answer(method, outcome, len(data), max_bytes)
        assert rows.counts() == before

    case()
    cases.assert_at_least(BUDGET["oversize"])


def test_the_message_size_limit_is_exact(channel: grpc.Channel, max_bytes: int) -> None:
    """A request of exactly the limit is read (message_id 0: INVALID_ARGUMENT); one byte
    more is RESOURCE_EXHAUSTED. The padding is an unknown field, which protobuf skips."""

    def padded(total: int) -> bytes:
        # tag (1 byte) + length (3 bytes for anything from 16 KiB to 2 MiB) + payload
        return length_delimited(15, b"p" * (total - 4))

    assert len(padded(max_bytes)) == max_bytes
    assert raw_call(channel, "GetMessage", padded(max_bytes)).code == INVALID
    over = raw_call(channel, "GetMessage", padded(max_bytes + 1))
    assert over.code == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("SendTemplateMessage", length_delimited(1, b"+44\xff7700900123")),
        ("ListMessages", length_delimited(1, b"\xc0\x80")),
        ("GetMessage", b"\x08" + b"\xff" * 11),
    ],
    ids=["invalid-utf8-phone", "overlong-nul-order-id", "overlong-varint"],
)
def test_an_undecodable_request_is_invalid_argument(
    channel: grpc.Channel, method: str, data: bytes
) -> None:
    """Once BUG-1: grpc answered INTERNAL "Exception deserializing request!" to these."""
    outcome = raw_call(channel, method, data)
    assert outcome.code == INVALID, (outcome.code.name, outcome.details)
    assert outcome.details.startswith(f"request: not a valid whatsapp.{method}Request message")


def test_idle_reflection_streams_do_not_starve_other_calls(
    gateway: RunningGateway, channel: grpc.Channel, stub: WhatsAppServiceStub
) -> None:
    """Once BUG-2: each open ServerReflectionInfo stream (grpcurl keeps one for its whole
    run) held one of the GRPC_MAX_WORKERS threads, so that many idle streams starved every
    other call, health checks included. Streams now have threads of their own, and those
    beyond GRPC_MAX_OPEN_STREAMS are refused at once."""
    settings = gateway.settings
    streams, refused = [], []
    try:
        for _ in range(max(settings.max_workers, settings.max_open_streams) + 2):
            requests: queue.Queue[Any] = queue.Queue()
            requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter(requests.get, None), timeout=30
            )
            streams.append(stream)
            try:
                next(stream)  # answered; the stream stays open, as grpcurl's does
            except grpc.RpcError as exc:
                refused.append(exc.code())
        assert len(streams) - len(refused) == settings.max_open_streams
        assert set(refused) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(settings.max_workers + 1):
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=3)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            outcome = call(stub.GetMessage, whatsapp_pb2.GetMessageRequest(message_id=1))
            assert outcome.code in (OK, grpc.StatusCode.NOT_FOUND)
    finally:
        for stream in streams:
            stream.cancel()


@fuzz_timeout(60)
def test_grpcurl_json_with_wrong_types_is_refused_by_grpcurl_or_answered_with_a_code(
    gateway: RunningGateway,
    stub: WhatsAppServiceStub,
    rows: Rows,
    topic: TopicReader,
    ledger: Ledger,
) -> None:
    executable = grpcurl_executable()
    seed = int.from_bytes(os.urandom(4)) if RANDOM else 20_240_601
    print(f"grpcurl bodies drawn with seed {seed}")  # shown when the test fails
    cases = bodies(seed, examples(BUDGET["grpcurl"]))
    before = rows.counts()
    # Each grpcurl holds a reflection stream for its whole run, and the gateway refuses
    # streams beyond GRPC_MAX_OPEN_STREAMS: stay below that.
    parallel = max(1, min(gateway.settings.max_workers, gateway.settings.max_open_streams) - 1)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        runs = list(pool.map(lambda body: run_grpcurl(executable, gateway.port, body), cases))
    accepted: set[int] = set()
    for run in runs:
        if run.refused_by_grpcurl:
            continue
        assert run.code in allowed_codes(run.body.method), run.describe()
        assert "Traceback" not in run.stderr, run.describe()
        if run.code == OK and run.body.method in SENDS:
            answer = json.loads(run.stdout)
            if not answer.get("duplicate", False):
                accepted.add(int(answer["message_id"]))
    assert rows.counts() == tuple(n + len(accepted) for n in before)
    ledger.accepted |= accepted
    ledger.assert_topic_holds_only_accepted(topic, rows, stub)
