"""The grpcio server: our service plus grpc.health.v1 and server reflection.

`build_server` only assembles and binds; `main` starts it and flips health to
SERVING once every dependency is ready, and to NOT_SERVING when stopping.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.interceptors import ServiceInterceptor
from notifier.gateway.settings import GatewaySettings

SERVICE_NAME: str = whatsapp_pb2.DESCRIPTOR.services_by_name["WhatsAppService"].full_name
# "" is the whole server, as Kubernetes' native gRPC probe asks by default.
_HEALTH_NAMES = ("", SERVICE_NAME)


def build_server(
    settings: GatewaySettings,
    servicer: whatsapp_pb2_grpc.WhatsAppServiceServicer,
    health_servicer: health.HealthServicer,
    extra_interceptors: Sequence[Any] = (),
) -> tuple[Any, int]:
    """Returns the (not yet started) server and the port it bound ([::]:0 picks one)."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="grpc"),
        interceptors=[ServiceInterceptor(), *extra_interceptors],
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
    port: int = server.add_insecure_port(f"[::]:{settings.grpc_port}")
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {settings.grpc_port}")
    return server, port


def set_serving(health_servicer: health.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in _HEALTH_NAMES:
        health_servicer.set(name, status)
