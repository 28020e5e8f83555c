"""The webhook benchmark's load client: signed Twilio status callbacks over kept-alive
HTTP/1.1 connections, closed loop (each connection sends its next request when the last
answer is in), in its own process, driving the webhook and the hello-world baseline alike.

Requests are built and signed before the measured window opens. Prints `measure` when the
window opens, `done` when it closes, then `result <json>` (the format of loadgen.py).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Callable, Iterator

from callbacks import STATUSES, CallbackSigner, status_form
from client_protocol import LoadResult, announce, cpu_seconds, print_result

_HEADER_END = b"\r\n\r\n"


class Connection(asyncio.Protocol):
    """One kept-alive connection: sends a request, reads its answer, sends the next."""

    def __init__(
        self,
        requests: Iterator[bytes],
        answered: Callable[[int, float, float], None],
        running: Callable[[], bool],
    ) -> None:
        self._requests = requests
        self._answered = answered
        self._running = running
        self._buffer = b""
        self._started = 0.0
        self._transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._send()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(_HEADER_END)) >= 0:
            head = self._buffer[:end]
            size = end + len(_HEADER_END) + _content_length(head)
            if len(self._buffer) < size:
                return
            self._buffer = self._buffer[size:]
            finished = time.perf_counter()
            self._answered(int(head[9:12]), self._started, finished)
            if b"\r\nconnection: close" in head.lower():
                assert self._transport is not None
                self._transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _send(self) -> None:
        assert self._transport is not None
        if not self._running():
            self._transport.close()
            return
        self._started = time.perf_counter()
        self._transport.write(next(self._requests))


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def build_requests(args: argparse.Namespace) -> list[bytes]:
    """`--pool` signed callbacks: message ids from `--first-mid`, each status in turn."""
    signer = CallbackSigner(args.public_url, args.auth_token, f"{args.host}:{args.port}")
    requests = []
    for n in range(args.pool):
        mid = args.first_mid + n // len(STATUSES)
        status = STATUSES[n % len(STATUSES)]
        to = f"+447700{mid % 1_000_000:06d}"
        form = status_form(mid, status, args.account_sid, to, args.from_number)
        requests.append(signer.request(mid, form))
    return requests


async def run(args: argparse.Namespace) -> LoadResult:
    requests = itertools.cycle(build_requests(args))
    result = LoadResult("closed", args.duration)
    window: list[float] = []
    stopping = False

    def answered(status: int, started: float, finished: float) -> None:
        ok = status == 200
        result.ok_total += ok
        if window and window[0] <= finished <= window[1]:
            if ok:
                result.ok += 1
                result.latencies_ms.append((finished - started) * 1000)
            else:
                result.errors[str(status)] += 1
        elif not ok:
            result.errors[str(status)] += 1

    async def connection() -> None:
        loop = asyncio.get_running_loop()
        while not stopping:
            _transport, protocol = await loop.create_connection(
                lambda: Connection(requests, answered, lambda: not stopping), args.host, args.port
            )
            await protocol.closed
            result.reconnects += not stopping

    tasks = [asyncio.create_task(connection()) for _ in range(args.connections)]
    await asyncio.sleep(args.warmup)
    start = time.perf_counter()
    window[:] = [start, start + args.duration]
    cpu = cpu_seconds()
    announce("measure")
    await asyncio.sleep(args.duration)
    result.cpu_seconds = cpu_seconds() - cpu
    announce("done")
    stopping = True
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-url", required=True, help="the URL Twilio signs over")
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--from-number", default="+14155238886")
    parser.add_argument("--connections", type=int, default=16, help="kept-alive connections")
    parser.add_argument("--pool", type=int, default=6000, help="distinct signed requests")
    parser.add_argument("--first-mid", type=int, default=1, help="first message id")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_result(result)


if __name__ == "__main__":
    main()
