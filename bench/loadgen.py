"""The load client of P1 and P2: grpc.aio calls of SendTemplateMessage, in its own process.

`closed`: N calls always in flight (throughput). `open`: calls started at fixed times at a
constant rate, latency measured from the scheduled start (no coordinated omission).
Prints `measure` when the measured window opens, `done` when it closes, then `result <json>`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import grpc
from client_protocol import LoadResult, announce, cpu_seconds, print_result
from workload import send_request

from notifier.common.pb import whatsapp_pb2_grpc

_CALL_TIMEOUT = 30.0
# Open loop: calls still unanswered beyond this many are counted as errors, not started.
_MAX_OUTSTANDING = 20_000


class Client:
    """Round-robins calls over `channels` HTTP/2 connections; numbers requests from `first`."""

    def __init__(self, target: str, channels: int, first_index: int) -> None:
        # Separate channels must not share a subchannel (one TCP connection).
        self._channels = [
            grpc.aio.insecure_channel(target, options=[("grpc.channel_id", n)])
            for n in range(channels)
        ]
        self._stubs = itertools.cycle(
            [whatsapp_pb2_grpc.WhatsAppServiceStub(c) for c in self._channels]
        )
        self._indices = itertools.count(first_index)

    async def ready(self) -> None:
        for channel in self._channels:
            await asyncio.wait_for(channel.channel_ready(), timeout=30)

    async def call(self) -> str:
        """One SendTemplateMessage; returns the status code's name."""
        request = send_request(next(self._indices))
        try:
            await next(self._stubs).SendTemplateMessage(request, timeout=_CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
        return "OK"

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


async def run_closed(
    client: Client, concurrency: int, warmup: float, duration: float
) -> LoadResult:
    result = LoadResult("closed", duration)
    window: list[float] = []  # [start, end] once measuring
    stopping = False

    async def worker() -> None:
        while not stopping:
            started = time.perf_counter()
            code = await client.call()
            finished = time.perf_counter()
            if code == "OK":
                result.ok_total += 1
            # Throughput counts the replies that arrive inside the window.
            if window and window[0] <= finished <= window[1]:
                if code == "OK":
                    result.ok += 1
                    result.latencies_ms.append((finished - started) * 1000)
                else:
                    result.errors[code] += 1
            elif code != "OK":
                result.errors[code] += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    start = time.perf_counter()
    window[:] = [start, start + duration]
    cpu = cpu_seconds()
    announce("measure")
    await asyncio.sleep(duration)
    result.cpu_seconds = cpu_seconds() - cpu
    announce("done")
    stopping = True
    await asyncio.gather(*tasks)
    return result


async def run_open(client: Client, rate: float, warmup: float, duration: float) -> LoadResult:
    result = LoadResult("open", duration)
    interval = 1.0 / rate
    outstanding: set[asyncio.Task[None]] = set()
    begin = time.perf_counter() + 0.05
    measure_from, measure_to = begin + warmup, begin + warmup + duration

    async def one(scheduled: float) -> None:
        code = await client.call()
        finished = time.perf_counter()
        if code == "OK":
            result.ok_total += 1
        if measure_from <= scheduled < measure_to:
            if code == "OK":
                result.ok += 1
                result.latencies_ms.append((finished - scheduled) * 1000)
            else:
                result.errors[code] += 1

    cpu = 0.0
    announced = False
    for n in itertools.count():
        scheduled = begin + n * interval
        if scheduled >= measure_to:
            break
        if not announced and scheduled >= measure_from:
            cpu = cpu_seconds()
            announce("measure")
            announced = True
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(outstanding) >= _MAX_OUTSTANDING:
            if scheduled >= measure_from:
                result.errors["CLIENT_OVERLOADED"] += 1
            continue
        task = asyncio.create_task(one(scheduled))
        outstanding.add(task)
        task.add_done_callback(outstanding.discard)
        result.max_outstanding = max(result.max_outstanding, len(outstanding))
    await asyncio.gather(*outstanding)
    result.cpu_seconds = cpu_seconds() - cpu
    announce("done")
    return result


async def main_async(args: argparse.Namespace) -> LoadResult:
    client = Client(args.target, args.channels, args.first_index)
    try:
        await client.ready()
        if args.mode == "closed":
            return await run_closed(client, args.concurrency, args.warmup, args.duration)
        return await run_open(client, args.rate, args.warmup, args.duration)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("closed", "open"))
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--concurrency", type=int, default=64, help="closed: calls in flight")
    parser.add_argument("--rate", type=float, default=1000.0, help="open: calls per second")
    parser.add_argument("--channels", type=int, default=1, help="HTTP/2 connections")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--first-index", type=int, default=0, help="first request's number")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print_result(result)


if __name__ == "__main__":
    main()
