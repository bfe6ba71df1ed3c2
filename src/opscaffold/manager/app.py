"""create_app(settings): the FastAPI app, its error contract and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from opscaffold.manager import deps, secrets
from opscaffold.manager.agent.endpoints import router as agent_router
from opscaffold.manager.alert import jobs as alert_jobs
from opscaffold.manager.alert.endpoints import router as alert_router
from opscaffold.manager.audit import service as audit_service
from opscaffold.manager.audit.endpoints import router as audit_router
from opscaffold.manager.auth.endpoints import router as auth_router
from opscaffold.manager.auth.permissions import rule_for, unlisted_routes
from opscaffold.manager.command import jobs as command_jobs
from opscaffold.manager.command.endpoints import router as command_router
from opscaffold.manager.config import Settings
from opscaffold.manager.dashboard.endpoints import router as dashboard_router
from opscaffold.manager.db import is_unavailable, transaction
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.endpoints import router as enrollment_router
from opscaffold.manager.errors import (
    CacheError,
    DatabaseError,
    DatabaseUnavailable,
    DomainError,
    InternalError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
)
from opscaffold.manager.jobs import maintenance as maintenance_jobs
from opscaffold.manager.jobs.registry import Job, collect
from opscaffold.manager.jobs.runner import JobRunner
from opscaffold.manager.kit import openapi
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.envelope import ErrorEnvelope
from opscaffold.manager.kit.responses import error_body, error_response
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.limits import RequestLimits
from opscaffold.manager.logging import get_logger
from opscaffold.manager.metric import jobs as metric_jobs
from opscaffold.manager.metric.endpoints import fleet_router as fleet_metric_router
from opscaffold.manager.metric.endpoints import router as metric_router
from opscaffold.manager.middleware import RequestContextMiddleware
from opscaffold.manager.node import jobs as node_jobs
from opscaffold.manager.node import service as node_service
from opscaffold.manager.node.endpoints import group_router
from opscaffold.manager.node.endpoints import router as node_router
from opscaffold.manager.notification import jobs as notification_jobs
from opscaffold.manager.notification.endpoints import router as notification_router
from opscaffold.manager.observability.endpoints import router as observability_router
from opscaffold.manager.observability.metrics import ManagerMetrics
from opscaffold.manager.rollout import jobs as rollout_jobs
from opscaffold.manager.rollout.endpoints import router as rollout_router
from opscaffold.manager.rpc import server as rpc_server
from opscaffold.manager.rpc.servicer import EffectiveConfig
from opscaffold.manager.runtime import Runtime
from opscaffold.manager.system.endpoints import router as system_router
from opscaffold.manager.task import jobs as task_jobs
from opscaffold.manager.task.endpoints import execution_router
from opscaffold.manager.task.endpoints import router as task_router
from opscaffold.manager.timeline.endpoints import router as timeline_router
from opscaffold.manager.ui import serve as web_console
from opscaffold.manager.user import service as user_service
from opscaffold.manager.user.endpoints import router as user_router
from opscaffold.manager.version import jobs as version_jobs
from opscaffold.manager.version.endpoints import router as version_router

API_DESCRIPTION = (
    "REST API of the Ops Scaffold Manager. Every response is an envelope "
    "`{code, message, data, request_id}`; `code` 0 is success, others follow the error codes "
    "of the design's appendix A. Authenticate with `POST /api/v1/auth/login` and send "
    "`Authorization: Bearer <token>`."
)
log = get_logger("opscaffold.app")

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Invalid argument (1001) or a domain rule refused the input",
        401: "Authentication failed (1002)",
        403: "Permission denied (1003)",
        404: "Not found (1004 or a domain code)",
        409: "Conflict with the current state",
        429: "Rate limited (1005); see Retry-After",
        500: "Internal, database (5001) or cache (5002) error",
        503: "Database unavailable (5001): it did not answer in time; retry later",
    }.items()
}


# The modules whose jobs every Manager runs.
JOB_MODULES = (
    alert_jobs,
    command_jobs,
    maintenance_jobs,
    metric_jobs,
    node_jobs,
    notification_jobs,
    rollout_jobs,
    task_jobs,
    version_jobs,
)


def all_jobs() -> dict[str, Job]:
    return collect(JOB_MODULES)


def route_id(route: APIRoute) -> str:
    """operation_id = the handler's name: stable and readable in a generated client."""
    return route.name


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    build_only: bool = False,
    web_dir: Path = web_console.STATIC_DIR,
) -> FastAPI:
    """Build the Manager app.

    Tests pass a prepared `runtime` to share one between apps; `build_only` makes an app that
    is never started (to render the OpenAPI document), so nothing is connected or created.
    `web_dir` holds the built web console (`make web`).
    """
    owns_runtime = runtime is None
    rt = runtime or (None if build_only else Runtime.build(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert rt is not None, "an app built only for its OpenAPI document cannot start"
        await _bootstrap(rt)
        # A shared runtime (tests) brings its own gRPC server and jobs, or none.
        background = await _start_background(rt) if owns_runtime else None
        log.info("manager started", grpc=settings.server.grpc.addr if background else None)
        try:
            yield
        finally:
            if background is not None:
                await background.stop()
            if owns_runtime:
                await rt.close()
            log.info("manager stopped")

    app = FastAPI(
        title="Ops Scaffold Manager API",
        version="1.0.0",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=f"{API_PREFIX}/redoc",
        swagger_ui_oauth2_redirect_url=f"{API_PREFIX}/docs/oauth2-redirect",
        generate_unique_id_function=route_id,
    )
    app.state.runtime = rt
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Domain routers carry their full path, so each request's route template is plain to see.
    routers = (
        auth_router,
        user_router,
        audit_router,
        enrollment_router,
        command_router,
        node_router,
        group_router,
        agent_router,
        metric_router,
        fleet_metric_router,
        version_router,
        rollout_router,
        dashboard_router,
        system_router,
        timeline_router,
        # before any router with /alerts/{id}: /alerts/channels is not an alert id
        notification_router,
        alert_router,
        task_router,
        execution_router,
    )
    for router in routers:
        app.include_router(router, dependencies=deps.API_DEPENDENCIES, responses=ERROR_RESPONSES)
    app.include_router(observability_router)
    if missing := unlisted_routes(app.routes):
        raise RuntimeError(f"routes missing from the permission table: {missing}")
    _install_error_handlers(app)
    # Innermost, so console responses get the request id, security headers, limits and metrics.
    app.add_middleware(web_console.WebConsole, static_dir=web_dir)
    http = settings.server.http
    app.add_middleware(
        RequestLimits,
        max_body=http.max_body_size,
        max_upload=http.max_upload_size,
        read_timeout=http.read_timeout.total_seconds(),
        write_timeout=http.write_timeout.total_seconds(),
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.server.http.cors_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=rt.metrics if rt else ManagerMetrics(),
        hsts=settings.tls.enabled or settings.tls.terminated_by_proxy,
        on_error=_unhandled_error,
    )
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=API_DESCRIPTION,
            routes=app.routes,
        )
        app.openapi_schema = openapi.declare_bearer_auth(openapi.tidy(document), _needs_token)
    return app.openapi_schema


def _needs_token(method: str, path: str) -> bool:
    rule = rule_for(method.upper(), path)
    return rule is not None and not rule.public


@dataclass
class Background:
    grpc: rpc_server.GrpcService
    jobs: JobRunner

    async def stop(self) -> None:
        await self.jobs.stop()
        await self.grpc.stop(grace=5)  # then flushes what daemons sent


async def _start_background(runtime: Runtime) -> Background:
    grpc = await rpc_server.start(runtime, effective_config_of(runtime.settings))
    jobs = JobRunner(
        runtime.sessions,
        runtime.settings,
        all_jobs(),
        rpc_server.replica_id(),
        runtime.command_bus,
    )
    jobs.start()
    return Background(grpc, jobs)


def effective_config_of(settings: Settings) -> EffectiveConfig:
    async def effective(session: AsyncSession, node_id: int) -> dict[str, str]:
        return await node_service.effective_config(session, node_id, settings)

    return effective


async def _bootstrap(runtime: Runtime) -> None:
    await _create_initial_admin(runtime)
    await _create_initial_enrollment_token(runtime)
    await _prepare_metric_partitions(runtime)


async def _prepare_metric_partitions(runtime: Runtime) -> None:
    """Before the first report: PostgreSQL has no catch-all partition to write into."""
    try:
        await metric_jobs.maintain_partitions(runtime.engine, runtime.settings.metrics, utcnow())
    except Exception:  # the hourly job tries again; MySQL and SQLite write on regardless
        log.exception("could not prepare the metric partitions")


async def _create_initial_enrollment_token(runtime: Runtime) -> None:
    settings = runtime.settings
    configured = settings.enrollment_token.get_secret_value() if settings.enrollment_token else None
    generated = secrets.load_or_create(settings.data_dir, "enrollment_token", nbytes=32)
    async with transaction(runtime.sessions) as session:
        try:
            created = await enrollment_service.ensure_initial(session, configured, generated)
        except sqlalchemy.exc.IntegrityError:  # another replica created it first
            return
    if created and not configured:
        print(
            f"  Daemons enroll with the token kept in {settings.data_dir / 'secrets'}/"
            "enrollment_token\n",
            flush=True,
        )


async def _create_initial_admin(runtime: Runtime) -> None:
    password = runtime.settings.admin_password
    async with transaction(runtime.sessions) as session:
        try:
            generated = await user_service.ensure_initial_admin(
                session, runtime.hasher, password.get_secret_value() if password else None
            )
        except sqlalchemy.exc.IntegrityError:  # another replica created it first
            return
    if generated:
        # Printed once, on the console of whoever started the Manager; never logged.
        print(
            "\n  Ops Scaffold Manager: created user 'admin' with password: "
            f"{generated}\n  Change it after logging in.\n",
            flush=True,
        )


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]


async def _audit_failure(request: Request, error: DomainError) -> None:
    """Record a refused mutating request, in a transaction of its own (the change rolled back)."""
    trail = deps.audit_trail(request)
    if trail is None or trail.written:
        return
    principal = getattr(request.state, "principal", None)
    if principal is not None and trail.user_id is None:
        trail.user_id, trail.username = principal.user_id, principal.username
    if isinstance(error, DatabaseUnavailable):
        # Writing the row would wait on the same database again: keep it in the log instead.
        log.warning(
            "audit row not written: database unavailable",
            action=trail.action,
            username=trail.username,
            ip=trail.ip,
            resource_id=trail.resource_id,
        )
        return
    try:
        async with transaction(request.app.state.runtime.sessions) as session:
            await audit_service.record_failure(session, trail, error.code, error.message)
    except Exception:
        log.exception("audit write failed", action=trail.action)


async def _respond(request: Request, error: DomainError) -> JSONResponse:
    await _audit_failure(request, error)
    return error_response(error)


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    return await _respond(request, exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "message": err.get("msg", "invalid"),
            "type": err.get("type", "value_error"),
        }
        for err in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors) or "request"
    error = InvalidArgument(f"invalid request: {fields}", data={"errors": errors})
    return await _respond(request, error)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    error: DomainError
    if exc.status_code == 404:
        error = NotFound(f"no route {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    elif exc.status_code == 400:
        error = InvalidArgument(str(exc.detail))
    else:
        body = error_body(exc.status_code * 10, str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
    return await _respond(request, error)


async def _unhandled_error(request: Request, exc: Exception) -> Response:
    error: DomainError
    if is_unavailable(exc):
        error = DatabaseUnavailable()
    elif isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        error = DatabaseError()
    elif isinstance(exc, redis.exceptions.RedisError):
        error = CacheError()
    else:
        error = InternalError()
    log.error("unhandled error", exc_info=exc, path=request.url.path, code=error.code)
    return await _respond(request, error)
