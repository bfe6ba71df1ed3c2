"""Redis is a cache and a bus: the Manager starts, serves and carries commands without it, and
takes it up again by itself when it returns.

Every test runs its own redis-server on a free port, so stopping it never touches the Redis
that other tests share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app, effective_config_of
from opscaffold.manager.command.bus import CHANNEL
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.rpc import server as rpc_server
from opscaffold.manager.runtime import Runtime
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc
from tests.fixtures.redis_server import RedisServer
from tests.helpers import wait_until
from tests.manager.conftest import FAST_ARGON2, bearer
from tests.manager.rpc.conftest import bearer as grpc_bearer
from tests.manager.rpc.conftest import registration

PASSWORD = "Outage-Passw0rd!"
ENROLLMENT = "enroll-" + "x" * 40
# With Redis, a command crosses replicas at once; without it, the outbox is read every 2 s.
WITH_REDIS_S = 2.0
WITHOUT_REDIS_S = 10.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.kill()


def settings_for(tmp_path: Path, redis_port: int) -> Settings:
    env = {
        "OPS_DATA_DIR": str(tmp_path / "data"),
        "OPS_LOG__LEVEL": "warning",
        "OPS_SERVER__GRPC__ADDR": "127.0.0.1:0",
        "OPS_ADMIN_PASSWORD": PASSWORD,
        "OPS_ENROLLMENT_TOKEN": ENROLLMENT,
        "OPS_REDIS__ENABLED": "true",
        "OPS_REDIS__HOST": "127.0.0.1",
        "OPS_REDIS__PORT": str(redis_port),
        **FAST_ARGON2,
    }
    return load_settings(None, env)


@dataclass
class Replica:
    runtime: Runtime
    http: httpx.AsyncClient
    grpc: rpc_server.GrpcService


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[Replica]:
    """One Manager replica in this process: its app (lifespan entered) and its gRPC server."""
    runtime = Runtime.build(settings)
    app: FastAPI = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            service = await rpc_server.start(
                runtime, effective_config_of(settings), reuse_port=False
            )
            try:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
                    yield Replica(runtime, http, service)
            finally:
                await service.stop(grace=0)
    finally:
        await runtime.close()


class Stream:
    """A daemon's Connect stream, driven by the test."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        stub = daemon_pb2_grpc.DaemonServiceStub(channel)
        self.outbox: asyncio.Queue[pb.DaemonMessage | None] = asyncio.Queue()
        self.call = stub.Connect(self._requests(), metadata=grpc_bearer(token))
        self.seq = 0

    async def acknowledge(self, command_id: str) -> None:
        self.seq += 1
        ack = pb.CommandAck(command_ids=[command_id])
        await self.outbox.put(pb.DaemonMessage(seq=self.seq, command_ack=ack))

    async def _requests(self) -> AsyncIterator[pb.DaemonMessage]:
        while (message := await self.outbox.get()) is not None:
            yield message

    async def next(self, kind: str, timeout: float) -> pb.ManagerMessage:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.call.read()
                assert message is not grpc.aio.EOF
                if message.WhichOneof("body") == kind:
                    assert isinstance(message, pb.ManagerMessage)
                    return message

    async def close(self) -> None:
        await self.outbox.put(None)
        self.call.cancel()


async def login(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post(
        "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["data"]["token"])


async def command_arrives(r: Replica, admin: dict[str, str], node_id: int, stream: Stream) -> float:
    """Send a ping through this replica's REST API; seconds until the stream carries it."""
    started = time.monotonic()
    sent = await r.http.post(
        "/api/v1/commands", json={"node_ids": [node_id], "type": "ping"}, headers=admin
    )
    assert sent.status_code == 201, sent.text
    command = (await stream.next("command", WITHOUT_REDIS_S)).command
    assert command.id == sent.json()["data"]["ids"][0]
    await stream.acknowledge(command.id)
    return time.monotonic() - started


async def health(r: Replica) -> tuple[int, dict[str, object]]:
    response = await r.http.get("/health")
    return response.status_code, response.json()


async def test_manager_serves_without_redis_and_takes_it_up_again(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = settings_for(tmp_path, redis_server.port)
    await asyncio.to_thread(migrate.upgrade, settings)
    redis = Redis(host="127.0.0.1", port=redis_server.port)

    # Redis is down from the start: both replicas start, log in and hold streams all the same.
    async with replica(settings) as a, replica(settings) as b:
        admin = await login(a.http)
        status, body = await health(a)
        assert status == 200
        assert body["status"] == "degraded"
        assert body["checks"] == {"database": "ok", "redis": "error: ConnectionError"}

        async with grpc.aio.insecure_channel(f"127.0.0.1:{b.grpc.port}") as channel:
            stub = daemon_pb2_grpc.DaemonServiceStub(channel)
            request = registration("5e5e5e5e-0000-4000-8000-000000000001")
            node = await stub.Register(request, metadata=grpc_bearer(ENROLLMENT))
            stream = Stream(channel, node.node_token)
            try:
                # Without Redis a command still crosses replicas, through the outbox.
                assert await command_arrives(a, admin, node.node_id, stream) < WITHOUT_REDIS_S

                # A session is cached in Redis, then ended while Redis is away.
                redis_server.start()
                await wait_until(lambda: _usable(a, b), timeout=10, what="both use Redis")
                second = await login(a.http)
                assert (await b.http.get("/api/v1/auth/me", headers=second)).status_code == 200
                assert [k async for k in redis.scan_iter(match="ops:auth:*")]

                # Both buses subscribed again: a command crosses replicas at once.
                await wait_until(lambda: _subscribers(redis, 2), timeout=10, what="both subscribe")
                assert await command_arrives(a, admin, node.node_id, stream) < WITH_REDIS_S

                redis_server.stop()
                await redis.aclose()
                assert (await a.http.post("/api/v1/auth/logout", headers=second)).status_code == 200
                assert (await b.http.get("/api/v1/auth/me", headers=second)).status_code == 401
                assert (await a.http.get("/api/v1/nodes", headers=admin)).status_code == 200
                status, body = await health(b)
                assert (status, body["status"]) == (200, "degraded")
                assert await command_arrives(a, admin, node.node_id, stream) < WITHOUT_REDIS_S

                # Redis returns with what it held before: the ended session stays ended.
                redis_server.start()
                await wait_until(lambda: _usable(a, b), timeout=10, what="both use Redis")
                assert (await b.http.get("/api/v1/auth/me", headers=second)).status_code == 401
                assert (await a.http.get("/api/v1/auth/me", headers=admin)).status_code == 200
                await wait_until(lambda: _subscribers(redis, 2), timeout=10, what="both subscribe")
                assert await command_arrives(a, admin, node.node_id, stream) < WITH_REDIS_S
            finally:
                await stream.close()
                await redis.aclose()


async def _usable(*replicas: Replica) -> bool:
    for r in replicas:
        _status, body = await health(r)
        if body["status"] != "ok":
            return False
    return True


async def _subscribers(redis: Redis, count: int) -> bool:
    try:
        [(_, subscribed)] = await redis.pubsub_numsub(CHANNEL)
    except OSError:
        return False
    return int(subscribed) >= count
