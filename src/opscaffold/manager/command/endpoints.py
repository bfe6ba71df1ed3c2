from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path

from opscaffold.manager.auth.permissions import COMMAND_ROLES
from opscaffold.manager.command import repository, service
from opscaffold.manager.command.schemas import CommandCreate, CommandRead, CommandsQueued
from opscaffold.manager.deps import AuditDep, CommandBusDep, CurrentUser, SessionDep
from opscaffold.manager.errors import NotFound, PermissionDenied
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/commands", tags=["commands"])


@router.post("", response_model=Envelope[CommandsQueued], status_code=201)
async def send_command(
    body: CommandCreate,
    session: SessionDep,
    bus: CommandBusDep,
    principal: CurrentUser,
    audit: AuditDep,
) -> Envelope[CommandsQueued]:
    """Queue a command for daemons (e.g. `ping` to test the path); delivered at least once.

    Operators may send `ping` and `restart`; `config` and `update` are for admins."""
    audit.detail = {"type": body.type, "node_ids": body.node_ids[:50], "count": len(body.node_ids)}
    if principal.role not in COMMAND_ROLES[body.type]:
        raise PermissionDenied(f"type: a {principal.role} may not send '{body.type}' commands")
    ids = await service.send(
        session,
        bus,
        body.node_ids,
        body.type,
        body.payload,
        timedelta(seconds=body.ttl_seconds),
        created_by=principal.user_id,
    )
    return ok(CommandsQueued(ids=ids))


@router.get("/{id}", response_model=Envelope[CommandRead])
async def get_command(
    id: Annotated[str, Path(min_length=36, max_length=36)],
    session: SessionDep,
) -> Envelope[CommandRead]:
    command = await repository.get(session, id)
    if command is None:
        raise NotFound("command not found")
    return ok(CommandRead.model_validate(command))
