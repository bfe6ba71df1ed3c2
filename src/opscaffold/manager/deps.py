"""FastAPI dependencies: the request's transaction, its caller, rate limits and the audit trail.

The request owns the transaction: `SessionDep` commits when the handler returns (before the
response is sent, so a failed commit is an error, not a lost change) and writes the audit row
of a mutating request in that same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.audit.service import AuditTrail, record
from opscaffold.manager.auth.permissions import Rule, rule_for
from opscaffold.manager.auth.service import AuthTools
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.db import run_after_commit
from opscaffold.manager.enrollment.repository import node_by_credential
from opscaffold.manager.enrollment.service import digest
from opscaffold.manager.errors import (
    InvalidArgument,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from opscaffold.manager.kit.net import client_ip
from opscaffold.manager.kit.storable import json_problem, text_problem
from opscaffold.manager.limits import is_upload
from opscaffold.manager.runtime import Runtime

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RATE_WINDOW_S = 60


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_auth_tools(runtime: RuntimeDep) -> AuthTools:
    return runtime.auth


AuthToolsDep = Annotated[AuthTools, Depends(get_auth_tools)]


def get_command_bus(runtime: RuntimeDep) -> CommandBus:
    return runtime.command_bus


CommandBusDep = Annotated[CommandBus, Depends(get_command_bus)]


async def get_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        trail: AuditTrail | None = getattr(request.state, "audit", None)
        if trail is not None:
            await record(session, trail)
        await session.commit()
        await run_after_commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def request_ip(request: Request) -> str:
    ip: str | None = getattr(request.state, "client_ip", None)
    if ip is None:
        ip = client_ip(request, get_runtime(request).settings.server.http.trusted_proxies)
        request.state.client_ip = ip
    return ip


def route_rule(request: Request) -> Rule | None:
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return rule_for(request.method, template) if template else None


def audit_trail(request: Request) -> AuditTrail | None:
    """The request's trail, begun on first use; None for reads and unknown routes."""
    trail: AuditTrail | None = getattr(request.state, "audit", None)
    if trail is not None or request.method not in MUTATING:
        return trail
    rule = route_rule(request)
    if rule is None or not rule.action:
        return None
    trail = AuditTrail(
        action=rule.action,
        resource_type=rule.resource,
        ip=request_ip(request),
        user_agent=request.headers.get("user-agent"),
        resource_id=_path_id(request.path_params),
    )
    request.state.audit = trail
    return trail


def _path_id(path_params: dict[str, Any]) -> str | None:
    value = path_params.get("id")
    if value is None:
        return None
    text = str(value)[:64]
    # The refusal of an id no database can store is audited too, without that id.
    return None if text_problem(text) else text


async def limit_by_ip(request: Request, runtime: RuntimeDep) -> None:
    limits = runtime.settings.rate_limit
    if not limits.enabled:
        return
    hit = await runtime.counters.incr(f"ip:{request_ip(request)}", RATE_WINDOW_S)
    if hit.count > limits.per_ip_per_minute:
        raise RateLimited(hit.retry_after, "too many requests from this address")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    family_id: str


async def authorize(request: Request, runtime: RuntimeDep, session: SessionDep) -> None:
    """Check the caller against the permission table; deny routes the table does not know."""
    rule = route_rule(request)
    if rule is None:
        raise PermissionDenied("route is not in the permission table")
    trail = audit_trail(request)
    if rule.public:
        return
    if rule.nodes and (node := await _node_caller(request, session)) is not None:
        request.state.node_id = node
        return
    principal = await _authenticate(request, runtime, session)
    if trail is not None:
        trail.user_id, trail.username = principal.user_id, principal.username
    assert rule.roles is not None
    if principal.role not in rule.roles:
        raise PermissionDenied(f"role '{principal.role}' may not do this")
    await _limit_user(runtime, principal.user_id)
    request.state.principal = principal


async def _node_caller(request: Request, session: AsyncSession) -> int | None:
    """The node whose token the request carries, if it carries one: the digest look-up the
    gRPC edge makes, so a deleted node's token stops working here too."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    found = await node_by_credential(session, digest(token.strip()))
    return None if found is None else found[0]


async def _authenticate(request: Request, runtime: Runtime, session: AsyncSession) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("missing bearer token")
    claims = runtime.tokens.decode("access", token.strip())
    state = await runtime.auth_states.load(session, claims.user_id, claims.family_id)
    if state is None or not state.active:
        raise Unauthenticated("user no longer exists or is disabled")
    if state.session_revoked:
        raise Unauthenticated("session has ended; log in again")
    return Principal(state.user_id, state.username, state.role, claims.family_id)


async def _limit_user(runtime: Runtime, user_id: int) -> None:
    limits = runtime.settings.rate_limit
    if not limits.enabled:
        return
    hit = await runtime.counters.incr(f"user:{user_id}", RATE_WINDOW_S)
    if hit.count > limits.per_user_per_minute:
        raise RateLimited(hit.retry_after, "too many requests for this user")


def current_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # only reachable on a route wrongly marked public
        raise Unauthenticated()
    return principal


def current_trail(request: Request) -> AuditTrail:
    trail = audit_trail(request)
    if trail is None:
        raise RuntimeError(f"{request.method} {request.url.path} has no audit action")
    return trail


async def refuse_unstorable(request: Request) -> None:
    """Refuse, naming the field, any path, query or JSON body value no database can store
    (NUL, lone surrogates, integers beyond 64 bits), before a handler or an audit row sees it.

    The JSON body is the one FastAPI has already read (cached on the request); only a body
    where such a value may appear is decoded again. A route taking uploads checks its own
    (streamed) body."""
    for name, value in request.path_params.items():
        _refuse_text(f"path.{name}", str(value))
    for name, value in request.query_params.multi_items():
        _refuse_text("query", name)
        _refuse_text(f"query.{name}", value)
    # An upload's body is streamed by its route, never read whole here, whatever its type.
    if (
        _may_be_json(request.headers.get("content-type", ""))
        and not is_upload(getattr(request.scope.get("route"), "endpoint", None))
        and (found := json_problem(await request.body()))
    ):
        _invalid(*found)


def _may_be_json(content_type: str) -> bool:
    """Whatever FastAPI may decode as JSON: any case, parameters, `+json` types, or none."""
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return not media or (main == "application" and (sub == "json" or sub.endswith("+json")))


def _refuse_text(field: str, value: str) -> None:
    if problem := text_problem(value):
        _invalid(field, problem)


def _invalid(field: str, problem: str) -> None:
    error = {"field": field, "message": problem, "type": "value_error"}
    raise InvalidArgument(f"invalid request: {field} {problem}", data={"errors": [error]})


CurrentUser = Annotated[Principal, Depends(current_principal)]
AuditDep = Annotated[AuditTrail, Depends(current_trail)]
API_DEPENDENCIES = [Depends(limit_by_ip), Depends(authorize), Depends(refuse_unstorable)]
