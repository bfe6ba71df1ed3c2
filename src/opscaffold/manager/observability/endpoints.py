"""Probes and Prometheus metrics (outside /api/v1, no envelope: probes and scrapers read them)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from opscaffold.manager.models.node import NODE_STATUSES
from opscaffold.manager.observability import repository
from opscaffold.manager.runtime import Runtime

router = APIRouter(tags=["observability"])


class HealthStatus(BaseModel):
    status: Literal["ok", "unhealthy"]
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="per dependency (database, redis): 'ok', 'error: <kind>', or 'disabled' "
        "for Redis when the Manager runs without it",
    )


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthStatus, "description": "every dependency answers"},
    503: {"model": HealthStatus, "description": "a dependency does not answer"},
}
CHECK_TIMEOUT_S = 2.0
DISABLED = "disabled"


async def _check_database(runtime: Runtime) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), runtime.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


async def _check_redis(runtime: Runtime) -> str:
    assert runtime.redis is not None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await runtime.redis.ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


async def dependency_checks(runtime: Runtime) -> dict[str, str]:
    checks = {"database": _check_database(runtime)}
    if runtime.redis is not None:
        checks["redis"] = _check_redis(runtime)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    # Named even when not used, so a probe's reader sees what was (and was not) checked.
    return results if runtime.redis is not None else results | {"redis": DISABLED}


async def _checked(request: Request) -> JSONResponse:
    checks = await dependency_checks(request.app.state.runtime)
    healthy = all(v in ("ok", DISABLED) for v in checks.values())
    body = {"status": "ok" if healthy else "unhealthy", "checks": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get(
    "/health",
    summary="Dependencies checked (spec §9.2): 200 or 503",
    responses=HEALTH_RESPONSES,
    response_model=HealthStatus,
)
async def health(request: Request) -> JSONResponse:
    return await _checked(request)


@router.get(
    "/readyz",
    summary="Readiness: the same checks as /health",
    responses=HEALTH_RESPONSES,
    response_model=HealthStatus,
)
async def readyz(request: Request) -> JSONResponse:
    return await _checked(request)


@router.get(
    "/livez",
    summary="Liveness: the process answers; no dependency is checked",
    response_model=HealthStatus,
)
async def livez() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        counts = await repository.node_counts(runtime.sessions)
    except Exception:  # a scrape must still answer while the database is away
        counts = None
    if counts is not None:
        runtime.metrics.nodes.set({status: counts.get(status, 0) for status in NODE_STATUSES})
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
