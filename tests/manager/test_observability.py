"""Probes (spec §9.2) and Prometheus metrics (spec §9.1)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app
from opscaffold.manager.config import load_settings
from opscaffold.manager.models import Node
from opscaffold.manager.observability.checks import CHECK_TIMEOUT_S
from opscaffold.manager.observability.metrics import DEFAULT_BUCKETS
from tests.manager.conftest import FAST_ARGON2, Stack, bearer, login

# A probe must answer within its check timeout, plus room for a loaded test machine.
PROBE_DEADLINE_S = CHECK_TIMEOUT_S + 2.0
REFUSED_PORT = "1"  # nothing listens there: connecting fails at once


# --- probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("probe", ["/health", "/readyz"])
async def test_probe_is_ok_with_every_dependency_checked(
    client: httpx.AsyncClient, stack: Stack, probe: str
) -> None:
    # SQLite runs embedded, without Redis; the server databases run with it. Either way the
    # body names both dependencies, so a reader sees what was (and was not) checked.
    assert (stack.runtime.redis is None) == (stack.backend == "sqlite")
    expected = {"database": "ok", "redis": "disabled" if stack.runtime.redis is None else "ok"}

    response = await client.get(probe)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": expected}


async def test_livez_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers: a hung dependency."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def dependency_port(kind: str) -> AsyncIterator[str]:
    if kind == "refused":
        yield REFUSED_PORT
    else:
        async with silent_server() as port:
            yield str(port)


@asynccontextmanager
async def unstarted_app(env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan (which would write the admin user to the database)."""
    app = create_app(load_settings(None, {**FAST_ARGON2, **env}))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://manager") as http:
            yield http
    finally:
        await app.state.runtime.close()


async def timed_get(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.get(path)
    return response, time.monotonic() - started


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_database_down_fails_readiness_but_not_liveness(tmp_path: Path, kind: str) -> None:
    async with dependency_port(kind) as port:
        env = {
            "OPS_DATA_DIR": str(tmp_path),
            "OPS_DATABASE__DRIVER": "mysql",
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__PORT": port,
        }
        async with unstarted_app(env) as http:
            for probe in ("/health", "/readyz"):
                response, seconds = await timed_get(http, probe)
                assert response.status_code == 503, probe
                body = response.json()
                assert body["status"] == "unhealthy"
                assert set(body["checks"]) == {"database", "redis"}
                assert body["checks"]["database"].startswith("error")
                assert body["checks"]["redis"] == "disabled"
                assert seconds < PROBE_DEADLINE_S, f"{probe} took {seconds:.1f} s"

            response, seconds = await timed_get(http, "/livez")
            assert response.status_code == 200
            assert seconds < 1.0


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_redis_down_degrades_but_stays_ready(tmp_path: Path, kind: str) -> None:
    """Redis is optional (the Manager serves without it): degraded, named, and still 200."""
    async with dependency_port(kind) as port:
        env = {
            "OPS_DATA_DIR": str(tmp_path),
            "OPS_REDIS__ENABLED": "true",
            "OPS_REDIS__HOST": "127.0.0.1",
            "OPS_REDIS__PORT": port,
        }
        # Alembic's env.py runs its own event loop, so it cannot run in the test's.
        await asyncio.to_thread(migrate.upgrade, load_settings(None, env))
        async with unstarted_app(env) as http:
            for probe in ("/health", "/readyz"):
                response, seconds = await timed_get(http, probe)
                assert response.status_code == 200, probe
                body = response.json()
                assert body["status"] == "degraded"
                assert body["checks"]["database"] == "ok"
                assert body["checks"]["redis"].startswith("error")
                assert seconds < PROBE_DEADLINE_S, f"{probe} took {seconds:.1f} s"

            response, _ = await timed_get(http, "/livez")
            assert response.status_code == 200


# --- metrics ----------------------------------------------------------------------------------


def promtool() -> str:
    """promtool's path; scripts/install-system-deps.sh installs it (required in CI)."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (scripts/install-system-deps.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def samples(body: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    ]


def request_count(body: str, path: str) -> float:
    return sum(
        v for labels, v in samples(body, "manager_http_requests_total") if labels["path"] == path
    )


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain;")
    return response.text


async def test_metrics_pass_promtool(client: httpx.AsyncClient) -> None:
    admin = bearer((await login(client))["token"])
    await client.get("/health")
    await client.get("/api/v1/system/users", headers=admin)
    await client.get("/api/v1/no-such-route")

    body = await scrape(client)
    checked = subprocess.run(
        [promtool(), "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == ""
    assert checked.stderr == ""
    for name in (
        "manager_http_requests_total",
        "manager_http_request_duration_seconds",
        "manager_nodes_total",
        "manager_grpc_requests_total",
    ):
        assert f"# HELP {name} " in body, name
    assert "# TYPE manager_grpc_requests_total counter" in body
    # Spec §9.1 asks for prometheus.DefBuckets (Go's), not prometheus_client's default.
    buckets = {
        labels["le"]
        for labels, _ in samples(body, "manager_http_request_duration_seconds_bucket")
        if labels["path"] == "/health"
    }
    assert buckets == {str(b) for b in DEFAULT_BUCKETS} | {"+Inf"}


async def test_http_metrics_label_the_route_template(client: httpx.AsyncClient) -> None:
    admin = bearer((await login(client))["token"])
    template = "/api/v1/system/users/{id}"
    before = await scrape(client)

    await client.get("/api/v1/system/users/123", headers=admin)
    await client.get("/api/v1/system/users/456", headers=admin)
    await client.get("/api/v1/no-such-route/789")

    after = await scrape(client)
    assert request_count(after, template) - request_count(before, template) == 2
    assert request_count(after, "unmatched") - request_count(before, "unmatched") == 1
    assert f'path="{template}"' in after
    http_lines = [line for line in after.splitlines() if line.startswith("manager_http_")]
    for raw in ("123", "456", "789", "no-such-route"):
        assert not [line for line in http_lines if raw in line.split("}")[0]], raw
    durations = samples(after, "manager_http_request_duration_seconds_count")
    assert any(labels["path"] == template for labels, _ in durations)


async def test_node_gauge_counts_the_nodes_table(client: httpx.AsyncClient, stack: Stack) -> None:
    statuses = ["online", "online", "offline"]
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(Node),
            [
                {
                    "uuid": f"00000000-0000-4000-8000-00000000000{i}",
                    "hostname": f"node-{i}",
                    "ip": f"10.0.0.{i}",
                    "status": status,
                }
                for i, status in enumerate(statuses, start=1)
            ],
        )

    body = await scrape(client)

    counts = {labels["status"]: value for labels, value in samples(body, "manager_nodes_total")}
    assert counts == {"online": 2, "offline": 1, "unknown": 0}
