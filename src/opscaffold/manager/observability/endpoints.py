"""Probes and Prometheus metrics (outside /api/v1, no envelope: probes and scrapers read them)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from opscaffold.manager.models.node import NODE_STATUSES
from opscaffold.manager.observability import repository
from opscaffold.manager.observability.checks import dependency_checks, overall
from opscaffold.manager.runtime import Runtime

router = APIRouter(tags=["observability"])


class HealthStatus(BaseModel):
    status: Literal["ok", "degraded", "unhealthy"] = Field(
        description="ok; degraded: an optional dependency (Redis) fails and the Manager serves "
        "without it; unhealthy: a required one (the database) fails"
    )
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="per dependency (database, redis): 'ok', 'error: <kind>', or 'disabled' "
        "for Redis when the Manager runs without it",
    )


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthStatus, "description": "every required dependency answers"},
    503: {"model": HealthStatus, "description": "a required dependency does not answer"},
}


async def _checked(request: Request) -> JSONResponse:
    checks = await dependency_checks(request.app.state.runtime)
    status = overall(checks)
    body = {"status": status, "checks": checks}
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)


@router.get(
    "/health",
    summary="Dependencies checked (spec §9.2): 200 (ok or degraded) or 503",
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
