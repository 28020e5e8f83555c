"""A cap on open streaming calls (server reflection, health Watch), so idle ones cannot
starve the unary calls.

grpcio's synchronous server gives each call a thread of its pool for as long as the call
lasts, and a stream lasts as long as its client keeps it open: grpcurl holds a reflection
stream for its whole run, a grpcui page for hours. The server's pool therefore has
GRPC_MAX_WORKERS threads for unary calls plus GRPC_MAX_OPEN_STREAMS for streams, and a
stream beyond that many open is refused at once with RESOURCE_EXHAUSTED. Unary calls are
not limited here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc

STREAMS_VAR = "GRPC_MAX_OPEN_STREAMS"


class StreamLimit(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        # grpc asks for a handler on every call; wrap each streaming method once.
        self._handlers: dict[str, Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        wrapped = self._handlers.get(details.method)
        if wrapped is None:
            wrapped = self._handlers[details.method] = self._limited(handler)
        return wrapped

    def _limited(self, handler: Any) -> Any:
        if handler.request_streaming and handler.response_streaming:
            make, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
        elif handler.request_streaming:
            make, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
        else:
            make, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
        return make(
            self._guard(behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _guard(self, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        refusal = (
            f"too many streams open on this server (at most {self._limit}, {STREAMS_VAR}); "
            "close one or retry later"
        )

        def serve(request: Any, context: Any) -> Any:
            if not self._slots.acquire(blocking=False):
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
            released = threading.Lock()

            def release() -> None:
                if released.acquire(blocking=False):  # once, however the call ends
                    self._slots.release()

            # Runs when the call ends in any way: finished, cancelled, client gone.
            if not context.add_callback(release):
                release()  # it has already ended
            return behavior(request, context)

        return serve
