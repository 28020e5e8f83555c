"""The baseline: a plain grpcio server whose SendTemplateMessage returns a constant reply.

Same proto and thread-pool size as the gateway (the harness passes GRPC_MAX_WORKERS'
default). Run as its own process; prints `port <n>` once it serves; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc

_REPLY = whatsapp_pb2.SendTemplateMessageResponse(message_id=1, status=whatsapp_pb2.QUEUED)


class NoopServicer(whatsapp_pb2_grpc.WhatsAppServiceServicer):
    def SendTemplateMessage(self, request: Any, context: Any) -> Any:
        return _REPLY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, required=True, help="thread-pool size")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = grpc.server(ThreadPoolExecutor(max_workers=args.workers))
    servicer = NoopServicer()  # type: ignore[abstract]  # only SendTemplateMessage is served
    whatsapp_pb2_grpc.add_WhatsAppServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    stop.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
