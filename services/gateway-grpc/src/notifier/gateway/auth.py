"""Bearer tokens of callers: who may call WhatsAppService, checked before anything else.

Off unless GRPC_AUTH_TOKENS lists the accepted tokens (comma-separated, so a token is
rotated by accepting the old and the new one for a while). A WhatsAppService call without
`authorization: Bearer <token>` metadata, or with a token not on the list, gets
UNAUTHENTICATED before its request is even parsed, so it can neither be validated nor
written. Health and reflection stay open: Kubernetes probes and grpcurl's discovery carry
no token. Tokens are compared in constant time and never logged; what a caller may do once
authenticated is not decided here.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from notifier.common.config import Env
from notifier.gateway import metrics

log = logging.getLogger(__name__)

TOKENS_VAR = "GRPC_AUTH_TOKENS"
# 16 characters of `openssl rand -hex 32` are 64 bits; shorter ones are guessable.
MIN_TOKEN_LENGTH = 16
AUTHORIZATION = "authorization"
# RFC 6750's b64token: what may follow "Bearer " in an authorization header.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
_ASK_FOR_TOKEN = "missing bearer token: send the metadata 'authorization: Bearer <token>'"


def tokens_from_env(env: Env) -> tuple[str, ...]:
    """The accepted tokens (none: authentication is off). A problem never quotes a token."""
    raw = env.optional(TOKENS_VAR)
    if raw is None:
        return ()
    tokens = tuple(token.strip() for token in raw.split(","))
    for number, token in enumerate(tokens, 1):
        where = f"{TOKENS_VAR}: token {number} of {len(tokens)}"
        if not token:
            env.problems.append(f"{where} is empty (tokens are separated by commas)")
        elif not _TOKEN.fullmatch(token):
            env.problems.append(
                f"{where} has a character a bearer token cannot carry "
                "(letters, digits and -._~+/= only)"
            )
        elif len(token) < MIN_TOKEN_LENGTH:
            env.problems.append(
                f"{where} is shorter than {MIN_TOKEN_LENGTH} characters; "
                "make one with `openssl rand -hex 32`"
            )
    return tokens


class BearerAuth(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls to methods under `prefix` that carry no accepted bearer token."""

    def __init__(self, tokens: Sequence[str], prefix: str) -> None:
        if not tokens:
            raise ValueError("BearerAuth needs at least one token")
        self._tokens = tuple(token.encode() for token in tokens)
        self._prefix = prefix
        # A refusing handler per method and reason, built once.
        self._refusals: dict[tuple[str, str], Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method: str = details.method
        if not method.startswith(self._prefix):
            return continuation(details)
        refusal = self._refusal_reason(details.invocation_metadata)
        if refusal is None:
            return continuation(details)
        handler = self._refusals.get((method, refusal))
        if handler is None:
            found = continuation(details)
            if found is None:  # no such method: grpc answers UNIMPLEMENTED
                return None
            handler = self._refusals[(method, refusal)] = _refusing(method, refusal, found)
        return handler

    def _refusal_reason(self, metadata: Any) -> str | None:
        """None for an accepted token, else why the call is refused (for logs and metrics)."""
        values = [value for key, value in metadata or () if key == AUTHORIZATION]
        if not values:
            return "missing"
        if len(values) > 1 or not isinstance(values[0], str):
            return "malformed"
        scheme, _, token = values[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed"
        presented = token.strip().encode("utf-8", "replace")
        accepted = False
        for known in self._tokens:  # every one, so the time taken does not tell which matched
            accepted |= hmac.compare_digest(presented, known)
        return None if accepted else "rejected"


def _refusing(method: str, reason: str, found: Any) -> Any:
    """A handler of the same kind as `found` that reads no request and answers UNAUTHENTICATED."""
    name = method.rsplit("/", 1)[-1]
    counter = metrics.REQUESTS.labels(name, grpc.StatusCode.UNAUTHENTICATED.name)
    details = "bearer token not accepted" if reason == "rejected" else _ASK_FOR_TOKEN

    def refuse(request: Any, context: Any) -> Any:
        counter.inc()
        log.info(
            "call refused: not authenticated",
            extra={"method": name, "reason": reason, "peer": context.peer()},
        )
        context.abort(grpc.StatusCode.UNAUTHENTICATED, details)

    # No request deserializer: the bytes of an unauthenticated call are never parsed.
    if found.request_streaming and found.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if found.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if found.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
