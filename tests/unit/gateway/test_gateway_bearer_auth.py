"""BearerAuth without a server: which metadata gets through, and what a refusal looks like."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from notifier.gateway.auth import BearerAuth

TOKEN = "3f0c9a1e5b7d2c4e6a8f0b1d3e5f7a9c"
OTHER = "b1d3e5f7a9c3f0c9a1e5b7d2c4e6a8f0"
METHOD = "/whatsapp.WhatsAppService/GetMessage"
SERVED = grpc.unary_unary_rpc_method_handler(lambda request, context: "served")


@dataclass(frozen=True)
class Details:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise Aborted


def handler_for(metadata: tuple[tuple[str, str], ...], method: str = METHOD) -> Any:
    auth = BearerAuth([TOKEN, OTHER], "/whatsapp.WhatsAppService/")
    return auth.intercept_service(lambda details: SERVED, Details(method, metadata))


def refusal(metadata: tuple[tuple[str, str], ...]) -> tuple[grpc.StatusCode, str]:
    handler = handler_for(metadata)
    assert handler is not SERVED
    assert handler.request_deserializer is None  # the request is never parsed
    context = FakeContext()
    with pytest.raises(Aborted):
        handler.unary_unary(b"\xff", context)
    assert context.aborted is not None
    return context.aborted


@pytest.mark.parametrize(
    "value",
    [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER   {TOKEN}  ", f"Bearer {OTHER}"],
    ids=["canonical", "lower-case-scheme", "extra-spaces", "second-token"],
)
def test_an_accepted_token_gets_through(value: str) -> None:
    assert handler_for((("x-request-id", "r1"), ("authorization", value))) is SERVED


def test_other_services_need_no_token() -> None:
    for method in ("/grpc.health.v1.Health/Check", "/grpc.reflection.v1alpha.ServerReflection/X"):
        assert handler_for((), method) is SERVED


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", f"Basic {TOKEN}"),),
        (("authorization", TOKEN),),
        (("authorization", "Bearer"),),
        (("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")),
    ],
    ids=["none", "basic", "no-scheme", "no-token", "twice"],
)
def test_a_call_without_a_usable_bearer_token_is_asked_for_one(
    metadata: tuple[tuple[str, str], ...],
) -> None:
    code, details = refusal(metadata)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details == "missing bearer token: send the metadata 'authorization: Bearer <token>'"


@pytest.mark.parametrize(
    "token",
    [TOKEN[:-1], TOKEN + "0", TOKEN.upper(), "é" * 32],
    ids=["short", "long", "case", "utf8"],
)
def test_a_wrong_token_is_not_accepted_and_not_echoed(token: str) -> None:
    code, details = refusal((("authorization", f"Bearer {token}"),))
    assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "bearer token not accepted")


def test_an_unknown_method_stays_unimplemented() -> None:
    auth = BearerAuth([TOKEN], "/whatsapp.WhatsAppService/")
    assert auth.intercept_service(lambda details: None, Details(METHOD, ())) is None


def test_authentication_without_tokens_is_a_mistake() -> None:
    with pytest.raises(ValueError):
        BearerAuth([], "/whatsapp.WhatsAppService/")
