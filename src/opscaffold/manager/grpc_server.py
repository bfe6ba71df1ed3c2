"""The Manager's gRPC server; daemons talk to it (services are registered as they are built)."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from opscaffold.manager.config import Settings, split_addr


async def start(settings: Settings, *, reuse_port: bool = True) -> grpc.aio.Server:
    cfg = settings.server.grpc
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", cfg.max_recv_msg_size),
            ("grpc.max_send_message_length", cfg.max_send_msg_size),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    host, port = split_addr(cfg.addr)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC on {cfg.addr}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server
