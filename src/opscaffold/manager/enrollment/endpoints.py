from __future__ import annotations

from fastapi import APIRouter

from opscaffold.manager.deps import AuditDep, CurrentUser, SessionDep
from opscaffold.manager.enrollment import repository, service
from opscaffold.manager.enrollment.schemas import (
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollmentTokenRead,
)
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import IdPath

router = APIRouter(prefix=f"{API_PREFIX}/enrollment-tokens", tags=["enrollment"])
TokenId = IdPath


@router.get("", response_model=Envelope[list[EnrollmentTokenRead]])
async def list_enrollment_tokens(session: SessionDep) -> Envelope[list[EnrollmentTokenRead]]:
    return ok([EnrollmentTokenRead.model_validate(t) for t in await repository.list_all(session)])


@router.post("", response_model=Envelope[EnrollmentTokenCreated], status_code=201)
async def create_enrollment_token(
    body: EnrollmentTokenCreate, session: SessionDep, principal: CurrentUser, audit: AuditDep
) -> Envelope[EnrollmentTokenCreated]:
    created = await service.create(session, body, principal.user_id)
    audit.resource_id = str(created.row.id)
    audit.detail = {"name": body.name, "max_uses": body.max_uses}
    read = EnrollmentTokenRead.model_validate(created.row)
    return ok(EnrollmentTokenCreated(**read.model_dump(), token=created.token))


@router.delete("/{id}", response_model=Envelope[EnrollmentTokenRead])
async def revoke_enrollment_token(
    id: TokenId,
    session: SessionDep,
) -> Envelope[EnrollmentTokenRead]:
    return ok(EnrollmentTokenRead.model_validate(await service.revoke(session, id)))
