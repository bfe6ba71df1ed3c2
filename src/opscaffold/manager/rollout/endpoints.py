"""Rollouts over REST (spec §4.4 `/updates`): deploy (or plan), list, status, pause, resume,
cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from opscaffold.manager.deps import AuditDep, CommandBusDep, CurrentUser, RuntimeDep, SessionDep
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.envelope import Envelope, Page
from opscaffold.manager.kit.pagination import OptionalPageDep, PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.models import Rollout
from opscaffold.manager.rollout import plan, service
from opscaffold.manager.rollout.schemas import (
    DeployPlan,
    DeployRequest,
    DeployStatus,
    RollbackRequest,
    RollbackResult,
    RolloutRead,
    RolloutStatus,
)
from opscaffold.manager.rollout.states import UpdateState

router = APIRouter(prefix=f"{API_PREFIX}/updates", tags=["updates"])
BatchId = Annotated[
    str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
]


@router.post("/deploy", response_model=Envelope[DeployPlan])
async def deploy(
    body: DeployRequest,
    session: SessionDep,
    bus: CommandBusDep,
    runtime: RuntimeDep,
    principal: CurrentUser,
    audit: AuditDep,
) -> Envelope[DeployPlan]:
    """Roll a version out to a target, wave by wave (`all`: one wave; `rolling`: waves of
    `batch_size`; `canary`: `canary_size` first, watched for `bake_seconds`, then waves of
    `batch_size`). `dry_run` returns the plan and starts nothing. Offline nodes are included
    and wait for their order until `expires_in_seconds`."""
    audit.detail = body.model_dump(exclude={"target_value"}) | {
        "target_value": body.target_value[:50]
    }
    result = await plan.deploy(
        session,
        bus,
        body,
        runtime.settings.server.http.base_url(),
        principal.user_id,
        utcnow(),
    )
    audit.resource_id = result.batch_id
    audit.detail["total_nodes"] = result.total_nodes
    return ok(result)


@router.get("", response_model=Envelope[Page[RolloutRead]])
async def list_rollouts(
    session: SessionDep, page: PageDep, status: RolloutStatus | None = None
) -> Envelope[Page[RolloutRead]]:
    """Rollouts, newest first, with their records counted per state."""
    total, items = await service.list_rollouts(session, page.offset, page.page_size, status)
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.get("/{batch_id}/status", response_model=Envelope[DeployStatus])
async def get_deploy_status(
    batch_id: BatchId,
    session: SessionDep,
    page: OptionalPageDep,
    record_status: UpdateState | None = None,
) -> Envelope[DeployStatus]:
    """A rollout's progress and each node's record; `record_status` and `page`/`page_size`
    narrow the records (the counts stay the rollout's)."""
    return ok(await service.status_of(session, batch_id, record_status, page))


@router.post("/{batch_id}/pause", response_model=Envelope[RolloutRead])
async def pause_rollout(
    batch_id: BatchId, session: SessionDep, audit: AuditDep
) -> Envelope[RolloutRead]:
    """Start no further wave; orders already sent are carried out."""
    audit.resource_id = batch_id
    return ok(_read(await service.pause(session, batch_id, utcnow())))


@router.post("/{batch_id}/resume", response_model=Envelope[RolloutRead])
async def resume_rollout(
    batch_id: BatchId, session: SessionDep, audit: AuditDep
) -> Envelope[RolloutRead]:
    """Go on with a paused rollout, accepting the failures so far."""
    audit.resource_id = batch_id
    return ok(_read(await service.resume(session, batch_id, utcnow())))


@router.post("/{batch_id}/cancel", response_model=Envelope[RolloutRead])
async def cancel_rollout(
    batch_id: BatchId, session: SessionDep, audit: AuditDep
) -> Envelope[RolloutRead]:
    """Stop for good: nodes not started fail as cancelled, undelivered orders expire."""
    audit.resource_id = batch_id
    return ok(_read(await service.cancel(session, batch_id, utcnow())))


@router.post("/{batch_id}/rollback", response_model=Envelope[RollbackResult])
async def rollback_rollout(
    batch_id: BatchId,
    session: SessionDep,
    bus: CommandBusDep,
    runtime: RuntimeDep,
    principal: CurrentUser,
    audit: AuditDep,
    body: RollbackRequest | None = None,
) -> Envelope[RollbackResult]:
    """Take the nodes this rollout updated back to the versions they ran before (cancelling
    it first if it is still active): a rollout of rollback orders per version."""
    audit.resource_id = batch_id
    result = await plan.rollback(
        session,
        bus,
        batch_id,
        body or RollbackRequest(),
        runtime.settings.server.http.base_url(),
        principal.user_id,
        utcnow(),
    )
    audit.detail = {"rollouts": result.batch_ids, "total_nodes": result.total_nodes}
    return ok(result)


def _read(rollout: Rollout) -> RolloutRead:
    return RolloutRead.model_validate(rollout)
