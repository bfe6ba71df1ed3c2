"""A database that stops answering fails requests fast: 503 (code 5001) over REST,
UNAVAILABLE over gRPC, and the gRPC health service says NOT_SERVING, as /health says 503.

The Manager reaches the shared database server through a proxy the test stalls, so the
server every other test uses is never paused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from opscaffold.manager.app import create_app, effective_config_of
from opscaffold.manager.db import transaction
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate
from opscaffold.manager.rpc import server as rpc_server
from opscaffold.manager.runtime import Runtime
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc
from tests.conftest import SERVICES
from tests.fixtures.stall_proxy import StallProxy
from tests.manager.conftest import ADMIN_PASSWORD, Stack, backend_settings, bearer
from tests.manager.rpc.conftest import bearer as grpc_bearer
from tests.manager.rpc.conftest import registration

TIMEOUTS = {
    "OPS_DATABASE__CONNECT_TIMEOUT": "1s",
    "OPS_DATABASE__STATEMENT_TIMEOUT": "2s",
    "OPS_DATABASE__POOL_TIMEOUT": "1s",
}
# Checking out a connection pings it (one statement timeout), then a new connection is tried
# (connect, and MySQL's handshake waits one more); a loaded test machine needs a margin.
BOUND_S = 2 * 2 + 1 + 3
HANG_S = 20  # without a bound the call would wait for the whole stall


@dataclass
class Stalled:
    proxy: StallProxy
    http: httpx.AsyncClient
    stub: daemon_pb2_grpc.DaemonServiceStub
    health: health_pb2_grpc.HealthStub
    runtime: Runtime


@pytest.fixture
async def stalled(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stalled]:
    """A second Manager on the test database, reaching it through a proxy."""
    if stack.backend == "sqlite":
        pytest.skip("an embedded database has no server to stall")
    monkeypatch.setattr(rpc_server, "HEALTH_INTERVAL_S", 0.2, raising=False)
    proxy = StallProxy(SERVICES[stack.backend])
    await proxy.start()
    settings = backend_settings(
        stack.backend, tmp_path, OPS_DATABASE__PORT=str(proxy.port), **TIMEOUTS
    )
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            service = await rpc_server.start(
                runtime, effective_config_of(settings), reuse_port=False
            )
            transport = httpx.ASGITransport(app=app)
            try:
                async with (
                    httpx.AsyncClient(transport=transport, base_url="http://m") as http,
                    grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
                ):
                    yield Stalled(
                        proxy,
                        http,
                        daemon_pb2_grpc.DaemonServiceStub(channel),
                        health_pb2_grpc.HealthStub(channel),
                        runtime,
                    )
            finally:
                proxy.resume()
                await service.stop(grace=0)
    finally:
        await runtime.close()
        await proxy.close()


async def timed(call: asyncio.Future[object] | object) -> tuple[object, float]:
    started = time.monotonic()
    async with asyncio.timeout(HANG_S):
        try:
            result = await call  # type: ignore[misc]
        except grpc.aio.AioRpcError as error:
            result = error
    return result, time.monotonic() - started


async def health_is(s: Stalled, status: int) -> None:
    async with asyncio.timeout(HANG_S):
        while True:
            reply = await s.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            if reply.status == status:
                return
            await asyncio.sleep(0.1)


async def test_stalled_database_fails_fast_and_health_follows(stalled: Stalled) -> None:
    s = stalled
    login = await s.http.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    admin = bearer(login.json()["data"]["token"])
    async with transaction(s.runtime.sessions) as session:
        token = await enrollment_service.create(session, EnrollmentTokenCreate(name="t"), None)
    node = await s.stub.Register(
        registration("5a11ed00-0000-4000-8000-000000000001"), metadata=grpc_bearer(token.token)
    )
    node_auth = grpc_bearer(node.node_token)
    config = pb.GetConfigRequest(node_uuid="5a11ed00-0000-4000-8000-000000000001")
    assert (await s.stub.GetConfig(config, metadata=node_auth, timeout=HANG_S)).config
    await health_is(s, health_pb2.HealthCheckResponse.SERVING)

    s.proxy.stall()
    credentials = {"username": "admin", "password": ADMIN_PASSWORD}
    (nodes, nodes_s), (again, login_s), (rpc, rpc_s) = await asyncio.gather(
        timed(s.http.get("/api/v1/nodes", headers=admin)),
        timed(s.http.post("/api/v1/auth/login", json=credentials)),
        timed(s.stub.GetConfig(config, metadata=node_auth, timeout=HANG_S)),
    )
    for response, seconds in ((nodes, nodes_s), (again, login_s)):
        assert isinstance(response, httpx.Response)
        assert response.status_code == 503, response.text
        assert response.json()["code"] == 5001
        assert seconds < BOUND_S, f"{response.request.url} took {seconds:.1f} s"
    assert isinstance(rpc, grpc.aio.AioRpcError)
    assert rpc.code() == grpc.StatusCode.UNAVAILABLE
    assert rpc_s < BOUND_S, f"GetConfig took {rpc_s:.1f} s"
    await health_is(s, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert (await s.http.get("/health")).status_code == 503

    s.proxy.resume()
    await health_is(s, health_pb2.HealthCheckResponse.SERVING)
    assert (await s.http.get("/api/v1/nodes", headers=admin)).status_code == 200
