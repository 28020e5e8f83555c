"""The grpcio server: our service plus grpc.health.v1 and server reflection.

`build_server` only assembles and binds; `main` starts it and flips health to
SERVING once every dependency is ready, and to NOT_SERVING when stopping. The port
is plaintext unless TLS is configured (tls.py); callers' tokens are checked by
auth.py, open streams capped by streams.py. With TLS, Kubernetes' gRPC probes (which
cannot speak TLS) use GRPC_HEALTH_PORT: a plaintext port serving health alone.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.auth import BearerAuth
from notifier.gateway.interceptors import SERVICE_PREFIX, ServiceInterceptor
from notifier.gateway.settings import GatewaySettings
from notifier.gateway.streams import StreamLimit
from notifier.gateway.tls import server_credentials

SERVICE_NAME: str = whatsapp_pb2.DESCRIPTOR.services_by_name["WhatsAppService"].full_name
# "" is the whole server, as Kubernetes' native gRPC probe asks by default.
_HEALTH_NAMES = ("", SERVICE_NAME)
# Threads of the health-only server: probes are few and answered from memory.
_HEALTH_WORKERS = 2


class GatewayServer:
    """The gRPC server and, when configured, the health-only one, started and stopped as one."""

    def __init__(self, server: Any, health_server: Any = None, health_port: int | None = None):
        self._servers = [s for s in (server, health_server) if s is not None]
        self.health_port = health_port

    def start(self) -> None:
        for server in self._servers:
            server.start()

    def stop(self, grace: float | None) -> _AllStopped:
        """Stops taking calls at once; returns what to `wait()` on for those in flight."""
        return _AllStopped([server.stop(grace) for server in self._servers])


class _AllStopped:
    def __init__(self, events: list[threading.Event]) -> None:
        self._events = events

    def wait(self, timeout: float | None = None) -> bool:
        return all(event.wait(timeout) for event in self._events)


def build_server(
    settings: GatewaySettings,
    servicer: whatsapp_pb2_grpc.WhatsAppServiceServicer,
    health_servicer: health.HealthServicer,
    extra_interceptors: Sequence[Any] = (),
) -> tuple[GatewayServer, int]:
    """Returns the (not yet started) server and the port it bound ([::]:0 picks one)."""
    interceptors: list[Any] = []
    if settings.auth_tokens:  # first: an unauthenticated call goes no further
        interceptors.append(BearerAuth(settings.auth_tokens, SERVICE_PREFIX))
    interceptors += [StreamLimit(settings.max_open_streams), ServiceInterceptor()]
    server = grpc.server(
        # Open streams hold a thread each for as long as they last; their own share of
        # threads keeps idle ones from starving unary calls (streams.py).
        ThreadPoolExecutor(
            max_workers=settings.max_workers + settings.max_open_streams,
            thread_name_prefix="grpc",
        ),
        interceptors=[*interceptors, *extra_interceptors],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Two gateways must not silently share one port.
            ("grpc.so_reuseport", 0),
        ],
    )
    whatsapp_pb2_grpc.add_WhatsAppServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    set_serving(health_servicer, serving=False)
    address = f"[::]:{settings.grpc_port}"
    if settings.tls is None:
        port: int = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, server_credentials(settings.tls))
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {settings.grpc_port}")
    if settings.health_port is None:
        return GatewayServer(server), port
    health_server, health_port = _health_only(settings.health_port, health_servicer)
    return GatewayServer(server, health_server, health_port), port


def _health_only(port: int, health_servicer: health.HealthServicer) -> tuple[Any, int]:
    """A plaintext server of grpc.health.v1 alone, sharing the main server's statuses."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=_HEALTH_WORKERS, thread_name_prefix="grpc-health"),
        # Watch streams would hold its few threads; probes use Check.
        interceptors=[StreamLimit(1)],
        options=[("grpc.max_receive_message_length", 4096), ("grpc.so_reuseport", 0)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound: int = server.add_insecure_port(f"[::]:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the health port {port}")
    return server, bound


def set_serving(health_servicer: health.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in _HEALTH_NAMES:
        health_servicer.set(name, status)
