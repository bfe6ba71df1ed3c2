"""The real `ops-manager` process with its configured Redis down: it starts and serves, says
it is degraded, and takes Redis up again by itself once it answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.processes import Manager
from tests.fixtures.redis_server import RedisServer
from tests.helpers import poll_until

PASSWORD = "No-Redis-Passw0rd"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)  # not started: the Manager starts without it
    yield server
    server.kill()


def health(manager: Manager) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"{manager.url}/health", timeout=10)
    return response.status_code, response.json()


def test_starts_and_serves_without_redis_then_uses_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    manager = Manager(
        tmp_path,
        {
            "OPS_ADMIN_PASSWORD": PASSWORD,
            "OPS_REDIS__ENABLED": "true",
            "OPS_REDIS__HOST": "127.0.0.1",
            "OPS_REDIS__PORT": str(redis_server.port),
            "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
        },
    )
    manager.start()
    try:
        login = httpx.post(
            f"{manager.url}/api/v1/auth/login",
            json={"username": "admin", "password": PASSWORD},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        status, body = health(manager)
        assert (status, body["status"]) == (200, "degraded")
        assert body["checks"] == {"database": "ok", "redis": "error: ConnectionError"}
        with grpc.insecure_channel(f"127.0.0.1:{manager.grpc_port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        redis_server.start()
        poll_until(
            lambda: health(manager)[1]["status"] == "ok", timeout=10, what="the Manager uses Redis"
        )
        me = httpx.get(
            f"{manager.url}/api/v1/auth/me",
            headers={"Authorization": f"Bearer {login.json()['data']['token']}"},
            timeout=10,
        )
        assert me.status_code == 200
        manager.stop()
    finally:
        manager.ensure_stopped()
