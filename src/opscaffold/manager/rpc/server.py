"""The Manager's gRPC server: DaemonService plus the standard health service."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager import tls as manager_tls
from opscaffold.manager.command import service as command_service
from opscaffold.manager.config import Settings, split_addr
from opscaffold.manager.ingest.flusher import Flusher
from opscaffold.manager.node import service as node_service
from opscaffold.manager.observability.checks import dependency_checks, overall
from opscaffold.manager.rpc.identity import IdentityResolver, Mode
from opscaffold.manager.rpc.registrar import EffectiveConfigs, Registrar
from opscaffold.manager.rpc.servicer import Channel, DaemonServicer, EffectiveConfig
from opscaffold.manager.rpc.streams import StreamRegistry
from opscaffold.manager.rpc.update_reports import UpdateReports
from opscaffold.manager.runtime import Runtime
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc

KEEPALIVE = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
    ("grpc.http2.max_pings_without_data", 0),
]
# Out of the box grpc.aio cancels new calls once ~1,000 wait to be served: a reconnect storm
# of a large fleet would be turned away, so the queue is allowed to grow.
MAX_PENDING_REQUESTS = 100_000
HEALTH_SERVICES = ("", "ops.daemon.DaemonService")
HEALTH_INTERVAL_S = 5.0


def identity_mode(settings: Settings) -> Mode:
    return "mtls" if settings.tls.enabled and settings.tls.ca_file else "token"


def effective_configs_of(settings: Settings) -> EffectiveConfigs:
    async def effective(
        session: AsyncSession, node_ids: Sequence[int]
    ) -> dict[int, dict[str, str]]:
        return await node_service.effective_configs(session, node_ids, settings)

    return effective


def replica_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class HealthFollower:
    """The gRPC health service says what /health says: NOT_SERVING while a required
    dependency (the database) fails, SERVING otherwise (a Redis outage only degrades)."""

    def __init__(self, runtime: Runtime, servicer: health.aio.HealthServicer) -> None:
        self._runtime = runtime
        self.servicer = servicer
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> None:
        checks = await dependency_checks(self._runtime)
        serving = overall(checks) != "unhealthy"
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in HEALTH_SERVICES:
            await self.servicer.set(service, status)

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="grpc-health")

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self.check()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.servicer.enter_graceful_shutdown()


@dataclass
class GrpcService:
    server: grpc.aio.Server
    channel: Channel
    port: int
    health: HealthFollower

    async def stop(self, grace: float = 5.0) -> None:
        """End the streams first (each answers what it read, then ends), so the server stops
        well within `grace`; then flush what remains and drop this replica's presence, while
        the database and Redis are still open."""
        await self.health.stop()  # NOT_SERVING: health-checking clients look elsewhere
        self.channel.closing.set()
        self.channel.bus.wake_all()
        await self.server.stop(grace)
        await self.channel.registrar.stop()
        await self.channel.update_reports.stop()
        await self.channel.flusher.stop()
        await self.channel.streams.stop()
        await self.channel.bus.stop()


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    tls = settings.tls
    if not tls.enabled:
        return None
    if (problem := manager_tls.grpc_problem(tls)) is not None:
        raise RuntimeError(problem)
    assert tls.cert_file is not None  # the config refuses TLS without them
    assert tls.key_file is not None
    pair = (tls.key_file.read_bytes(), tls.cert_file.read_bytes())
    ca = tls.ca_file.read_bytes() if tls.ca_file else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=ca, require_client_auth=ca is not None
    )


async def start(
    runtime: Runtime, effective_config: EffectiveConfig, *, reuse_port: bool = True
) -> GrpcService:
    settings = runtime.settings
    cfg = settings.server.grpc
    bus = runtime.command_bus
    flusher = Flusher(runtime.sessions, runtime.metrics)
    identities = IdentityResolver(runtime.sessions, identity_mode(settings))
    registrar = Registrar(runtime.sessions, identities, effective_configs_of(settings))
    update_reports = UpdateReports(runtime.sessions)
    channel = Channel(
        runtime=runtime,
        flusher=flusher,
        registrar=registrar,
        update_reports=update_reports,
        identities=identities,
        streams=StreamRegistry(runtime.redis_link, replica_id()),
        bus=bus,
        effective_config=effective_config,
    )
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", cfg.max_recv_msg_size),
            ("grpc.max_send_message_length", cfg.max_send_msg_size),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.server.max_pending_requests", MAX_PENDING_REQUESTS),
            *KEEPALIVE,
        ]
    )
    daemon_pb2_grpc.add_DaemonServiceServicer_to_server(DaemonServicer(channel), server)
    follower = HealthFollower(runtime, health.aio.HealthServicer())
    health_pb2_grpc.add_HealthServicer_to_server(follower.servicer, server)
    host, port = split_addr(cfg.addr)
    credentials = _credentials(settings)
    address = f"{host}:{port}"
    bound = (
        server.add_secure_port(address, credentials)
        if credentials
        else server.add_insecure_port(address)
    )
    if bound == 0:
        raise RuntimeError(f"cannot listen for gRPC on {cfg.addr}")
    flusher.start()
    registrar.start()
    update_reports.start()
    await bus.start(lambda: command_service.nodes_with_pending(runtime.sessions))
    channel.streams.start()
    await server.start()
    await follower.check()
    follower.start()
    return GrpcService(server, channel, bound, follower)
