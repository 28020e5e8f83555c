"""Hypothesis strategies for the webhook: Twilio callbacks mutated field by field, random
forms and bytes, every way of signing (or not), content types, methods and paths.

Each drawn `Call` carries what the test needs to judge the answer: whether its signature
is right for what the server will parse, and whether the mutations could make a correct
callback malformed (`harmful`) or only touched what Twilio may add or change freely.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import FormDataParser

from tests.fuzz.grpc_inputs import NASTY, VALID_PHONES
from tests.integration.webhook.webhook_support import PUBLIC, TOKEN, signature

FORM = "application/x-www-form-urlencoded"
ROUTES = ("/webhook/status", "/webhook/inbound", "/webhook")
KNOWN_STATUSES = (
    "accepted", "scheduled", "queued", "sending", "sent", "delivered", "read", "failed",
    "undelivered", "canceled", "DELIVERED", " read ",
)  # fmt: skip
UNKNOWN_STATUSES = ("partially_delivered", "receiving", "delivery_unknown", "😀", "ready")
# What a callback is read by: changing one of these may make it malformed (400).
STATUS_FIELDS = ("MessageSid", "MessageStatus", "ErrorCode")
INBOUND_FIELDS = ("MessageSid", "From", "To", "NumMedia")
# On POST /webhook these also decide whether it is a status or an inbound message.
KIND_FIELDS = ("MessageStatus", "SmsStatus", "From")
# Fields Twilio sends that only travel along: any value must be accepted.
FREE_FIELDS = (
    "AccountSid", "ApiVersion", "ChannelPrefix", "ErrorMessage", "Body", "ProfileName", "WaId",
    "ButtonPayload", "ButtonText", "OptOutType", "MessagingServiceSid", "NumSegments",
    "ReferralNumMedia", "Latitude",
)  # fmt: skip
_HEX = "0123456789abcdefABCDEF"
_LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF)
# Long values, mostly within the 64 KiB body limit (the huge ones are huge_requests' job).
_LONG = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(("x", "😀", "\x00", "%", "&=")),
    st.sampled_from((65, 129, 1000, 4097, 20_000, 70_000)),
)


@dataclass(frozen=True, slots=True, repr=False)
class Call:
    method: str
    path: str
    query: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]
    signed_right: bool  # the signature is right for what the server will parse
    harmful: bool  # a field the callback is read by was changed
    pairs: tuple[tuple[str, str], ...] = field(default=())  # the form, if a form was sent
    chunked: bool = False  # sent without a Content-Length, as gunicorn passes chunked bodies
    kind: str | None = None  # "status" or "inbound" for a callback

    def __repr__(self) -> str:
        # Bodies run to megabytes: show their start, so a failing case stays readable.
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return (
            f"Call({self.method} {self.path!r} query={self.query!r} body={body!r} "
            f"({len(self.body)} bytes) content_type={self.content_type!r} "
            f"headers={ {k: v[:80] for k, v in self.headers.items()} } "
            f"signed_right={self.signed_right} harmful={self.harmful} "
            f"chunked={self.chunked} kind={self.kind})"
        )

    @property
    def route(self) -> str | None:
        return self.path if self.path in ROUTES and self.method == "POST" else None


def sids() -> st.SearchStrategy[str]:
    return st.builds(
        lambda prefix, digits: prefix + digits,
        st.sampled_from(("SM", "MM")),
        st.text(_HEX, min_size=32, max_size=32),
    )


def nasty_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY), st.text(max_size=60), st.just(""))


@st.composite
def base_callback(draw: st.DrawFn, kind: str) -> list[tuple[str, str]]:
    customer = draw(st.sampled_from(VALID_PHONES)).replace(" ", "")
    customer = "".join(c for c in customer if c == "+" or c.isdigit())
    ours = "+14155238886"
    sid = draw(sids())
    if kind == "status":
        status = draw(st.one_of(st.sampled_from(KNOWN_STATUSES), st.sampled_from(UNKNOWN_STATUSES)))
        pairs = [
            ("MessageSid", sid), ("SmsSid", sid), ("AccountSid", "AC" + "1" * 32),
            ("From", f"whatsapp:{ours}"), ("To", f"whatsapp:{customer}"),
            ("MessageStatus", status), ("SmsStatus", status), ("ApiVersion", "2010-04-01"),
        ]  # fmt: skip
        if draw(st.booleans()):
            pairs += [("ErrorCode", draw(st.sampled_from(("63016", "0", "-1", "2147483647")))),
                      ("ErrorMessage", draw(nasty_text()))]  # fmt: skip
        return pairs
    return [
        ("MessageSid", sid), ("AccountSid", "AC" + "1" * 32), ("From", f"whatsapp:{customer}"),
        ("To", f"whatsapp:{ours}"), ("Body", draw(nasty_text())),
        ("NumMedia", draw(st.sampled_from(("0", "1", "10", "")))),
        ("ProfileName", draw(nasty_text())), ("WaId", customer.lstrip("+")),
        ("SmsStatus", "received"), ("OptOutType", draw(st.sampled_from(("", "STOP", "start")))),
    ]  # fmt: skip


@st.composite
def mutated_pairs(
    draw: st.DrawFn, pairs: list[tuple[str, str]], important: tuple[str, ...]
) -> tuple[list[tuple[str, str]], bool]:
    """Applies up to five mutations; True when one touched an `important` field."""
    pairs = list(pairs)
    harmful = False
    for _ in range(draw(st.integers(0, 5))):
        operation = draw(st.sampled_from(("add", "alter", "drop", "repeat", "huge")))
        names = [name for name, _ in pairs]
        if operation == "add":
            name = draw(st.one_of(st.sampled_from(FREE_FIELDS), nasty_text()))
            if name in important or name in names:
                name = "X" + name  # a parameter Twilio might add tomorrow
            pairs.insert(draw(st.integers(0, len(pairs))), (name, draw(nasty_text())))
            continue
        if not pairs:
            continue
        index = draw(st.integers(0, len(pairs) - 1))
        name = pairs[index][0]
        harmful |= name in important
        if operation == "alter":
            pairs[index] = (name, draw(nasty_text()))
        elif operation == "drop":
            del pairs[index]
        elif operation == "repeat":
            pairs.append((name, draw(nasty_text())))
        else:
            pairs[index] = (name, draw(_LONG))
    return pairs, harmful


def mids() -> st.SearchStrategy[tuple[str, bool]]:
    """A StatusCallback query: (query, harmful). Our ids are positive int64s."""
    good = st.integers(1, 2**63 - 1).map(lambda i: (urlencode({"mid": i}), False))
    bad = st.sampled_from(
        ("0", "-1", str(2**63), "abc", "", " 1", "١٢", "1.0", "1e3", "0x10", "99999999999999999999")
    ).map(lambda v: (urlencode({"mid": v}), True))
    twice = st.just(("mid=1&mid=2", True))
    return st.one_of(st.just(("", False)), good, bad, twice)


@st.composite
def signing(draw: st.DrawFn, url: str, params: MultiDict[str, str]) -> tuple[dict[str, str], bool]:
    """(headers, signed right): right, missing, empty, wrong token, over other
    parameters or another URL, or garbage."""
    how = draw(st.sampled_from(("right",) * 6 + ("missing", "empty", "token", "params", "url",
                                                 "garbage")))  # fmt: skip
    if how == "missing":
        return {}, False
    if how == "empty":
        return {"X-Twilio-Signature": ""}, False
    if how == "token":
        return {"X-Twilio-Signature": signature(url, params, TOKEN + "x")}, False
    if how == "params":
        other = MultiDict([*params.items(multi=True), ("Injected", "1")])
        return {"X-Twilio-Signature": signature(url, other)}, False
    if how == "url":
        return {"X-Twilio-Signature": signature(url.replace("https", "http", 1), params)}, False
    if how == "garbage":
        return {"X-Twilio-Signature": draw(st.text(_LATIN1, min_size=1, max_size=60))}, False
    return {"X-Twilio-Signature": signature(url, params)}, True


def server_form(body: bytes, content_type: str | None) -> MultiDict[str, str]:
    """The form werkzeug will parse from the body: what a correct client signs over."""
    if content_type is None:
        return MultiDict()
    mimetype = content_type.split(";", 1)[0].strip().lower()
    options = dict(
        part.strip().split("=", 1) for part in content_type.split(";")[1:] if "=" in part
    )
    _, form, _ = FormDataParser().parse(io.BytesIO(body), mimetype, len(body), options)
    return form


@st.composite
def callbacks(draw: st.DrawFn) -> Call:
    """A Twilio callback to one of our routes: mutated, signed some way, some content type."""
    route = draw(st.sampled_from(ROUTES))
    kind = {"/webhook/status": "status", "/webhook/inbound": "inbound"}.get(route)
    kind = kind or draw(st.sampled_from(("status", "inbound")))
    important: tuple[str, ...] = STATUS_FIELDS if kind == "status" else INBOUND_FIELDS
    if route == "/webhook":
        important += KIND_FIELDS
    pairs, harmful = draw(mutated_pairs(draw(base_callback(kind)), important))
    query, bad_mid = draw(mids()) if kind == "status" else ("", False)
    harmful |= bad_mid
    content_type = draw(
        st.sampled_from(
            (
                FORM,
                FORM,
                FORM,
                FORM + "; charset=utf-8",
                "application/json",
                "text/plain",
                None,
                "multipart/form-data",
            )
        )
    )
    if content_type == "multipart/form-data":
        body, content_type = _multipart(pairs)
    elif content_type == "application/json":
        body = json.dumps(dict(pairs)).encode()
    else:
        body = urlencode(pairs).encode()
    url = PUBLIC + route + (f"?{query}" if query else "")
    headers, signed_right = draw(signing(url, server_form(body, content_type)))
    chunked = draw(st.integers(0, 9)) == 0
    return Call("POST", route, query, body, content_type, headers, signed_right, harmful,
                tuple(pairs), chunked, kind)  # fmt: skip


def _multipart(pairs: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "fuzzboundary7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(k)}"\r\n\r\n{v}\r\n'
        for k, v in pairs
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


@st.composite
def random_requests(draw: st.DrawFn) -> Call:
    """Random forms and raw bytes, to our routes or anywhere, by any method."""
    method = draw(st.sampled_from(("POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH",
                                   "HEAD", "OPTIONS")))  # fmt: skip
    path = draw(
        st.one_of(
            st.sampled_from((*ROUTES, *ROUTES, *ROUTES, "/healthz", "/readyz")),
            st.sampled_from(
                (
                    "/",
                    "/webhook/status/",
                    "/WEBHOOK",
                    "//webhook",
                    "/webhook/x",
                    "/webhook/status;x",
                    "/metrics",
                    "/ünï",
                    "/webhook/inbound%00",
                )
            ),
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
                lambda p: "/" + p.lstrip("/").replace("?", "").replace("#", "")
            ),
        )
    )
    if draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(nasty_text(), nasty_text()), max_size=12))
        body = urlencode(pairs).encode()
    else:
        pairs, body = [], draw(st.binary(max_size=400))
    content_type = draw(st.sampled_from((FORM, FORM, None, "application/json", "text/plain")))
    query = draw(st.sampled_from(("", "mid=1", "mid=", "a=%FF", "mid=1&mid=%00")))
    url = PUBLIC + path + (f"?{query}" if query else "")
    headers, signed_right = draw(signing(url, server_form(body, content_type)))
    return Call(method, path, query, body, content_type, headers, signed_right, True,
                tuple(pairs))  # fmt: skip


@st.composite
def huge_requests(draw: st.DrawFn, max_body: int) -> Call:
    """A body over the limit, signed or not, any content type, with or without a length."""
    route = draw(st.sampled_from(ROUTES))
    size = max_body + draw(st.sampled_from((1, 2, 1000, max_body, 4 * max_body)))
    pairs = [("MessageSid", "SM" + "0" * 32), ("MessageStatus", "sent")]
    pad = size - len(urlencode(pairs)) - len("&Padding=")
    pairs.append(("Padding", draw(st.sampled_from(("x", "é", "\x00"))) * pad))
    body = urlencode(pairs).encode()
    content_type = draw(st.sampled_from((FORM, None, "application/json", "multipart/form-data")))
    url = PUBLIC + route
    headers, signed_right = draw(signing(url, MultiDict(pairs)))
    return Call("POST", route, "", body, content_type, headers, signed_right, True, tuple(pairs),
                chunked=draw(st.booleans()))  # fmt: skip


_HOSTS = (
    "hooks.example.com", "hooks.example.com:443", "localhost:abc", "localhost:99999", "[::1",
    "[::1]:70000", "a b", "evil.com/x?y", "hooks.example.com:0", "", "é.com", "%00",
    "hooks.example.com, evil.com", "hooks.example.com\t", "xn--e1a.com",
)  # fmt: skip
_FORWARDED = {
    "Host": _HOSTS,
    "X-Forwarded-Host": _HOSTS,
    "X-Forwarded-Proto": ("https", "http", "ht tp", "HTTPS", "javascript", "", "https, http"),
    "X-Forwarded-Port": ("443", "abc", "99999", "-1", "", "4 43", "0x1bb", "443, 80"),
    "X-Forwarded-Prefix": ("/a b%zz", "/../", "//evil", "/é", "", "/hooks", "a:b", "000", ":x"),
    "X-Forwarded-For": ("1.2.3.4", "garbage", "", "1.2.3.4, 5.6.7.8"),
}
# What the ingress in front of us says when Twilio called https://hooks.example.com.
CLEAN_FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}


@st.composite
def forwarded_requests(draw: st.DrawFn) -> tuple[Call, int]:
    """A valid status callback signed for https://hooks.example.com, reaching an app without
    PUBLIC_WEBHOOK_URL (0 or 1 trusted proxies) with Host and X-Forwarded-* headers of any
    shape. Only a trusted proxy's clean headers make the signature right."""
    proxies = draw(st.integers(0, 1))
    route = "/webhook/status"
    pairs = draw(base_callback("status"))
    headers = dict(CLEAN_FORWARDED)
    garbled = draw(st.lists(st.sampled_from(sorted(_FORWARDED)), max_size=3, unique=True))
    for name in garbled:
        headers[name] = draw(
            st.one_of(st.sampled_from(_FORWARDED[name]), st.text(_LATIN1, max_size=40))
        )
    params = MultiDict(pairs)
    headers["X-Twilio-Signature"] = signature(PUBLIC + route, params)
    signed_right = proxies == 1 and not garbled
    body = urlencode(pairs).encode()
    call = Call("POST", route, "", body, FORM, headers, signed_right, False, tuple(pairs),
                kind="status")  # fmt: skip
    return call, proxies
