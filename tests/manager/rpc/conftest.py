"""A real gRPC server per database, and daemons' side of the wire for the tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest

from opscaffold.manager.app import effective_config_of
from opscaffold.manager.db import transaction
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate
from opscaffold.manager.rpc import server as rpc_server
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc
from tests.manager.conftest import Stack


@pytest.fixture(scope="session")
async def grpc_service(stack: Stack) -> AsyncIterator[rpc_server.GrpcService]:
    # Port 0 and no SO_REUSEPORT: a leftover server can never silently take our calls.
    service = await rpc_server.start(
        stack.runtime, effective_config_of(stack.settings), reuse_port=False
    )
    yield service
    await service.stop(grace=0)


@dataclass
class Wire:
    """One test's view of the Manager over gRPC: a stub and an enrollment token."""

    stub: daemon_pb2_grpc.DaemonServiceStub
    enrollment_token: str
    service: rpc_server.GrpcService
    channel: grpc.aio.Channel

    async def register(
        self, node_uuid: str | None = None, **fields: Any
    ) -> tuple[pb.RegisterResponse, str]:
        request = registration(node_uuid or str(uuid.uuid4()), **fields)
        call = self.stub.Register(request, metadata=bearer(self.enrollment_token))
        response: pb.RegisterResponse = await call
        return response, request.uuid


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def registration(node_uuid: str, **fields: Any) -> pb.RegisterRequest:
    defaults: dict[str, Any] = {
        "uuid": node_uuid,
        "hostname": f"web-{node_uuid[:8]}",
        "ip": "10.0.0.5",
        "port": 9100,
        "os": "linux",
        "arch": "amd64",
        "kernel_version": "6.1.0",
        "daemon_version": "1.0.0",
        "cpu_cores": 4,
        "memory_total": 8 << 30,
        "disk_total": 100 << 30,
        "labels": {"env": "prod"},
        # What the node's own daemon keeps beside its uuid (a stranger does not know it).
        "enrollment_key": f"daemon-key-of-{node_uuid}",
    }
    return pb.RegisterRequest(**(defaults | fields))


@pytest.fixture
async def wire(
    client: httpx.AsyncClient, stack: Stack, grpc_service: rpc_server.GrpcService
) -> AsyncIterator[Wire]:
    grpc_service.channel.identities.forget()  # ids restart after the tables are emptied
    async with transaction(stack.runtime.sessions) as session:
        created = await enrollment_service.create(session, EnrollmentTokenCreate(name="t"), None)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_service.port}") as channel:
        stub = daemon_pb2_grpc.DaemonServiceStub(channel)
        yield Wire(stub, created.token, grpc_service, channel)
