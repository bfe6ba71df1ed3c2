from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from opscaffold.manager.db import after_commit
from opscaffold.manager.deps import AuditDep, RuntimeDep, SessionDep
from opscaffold.manager.kit.envelope import EmptyData, Envelope, Page
from opscaffold.manager.kit.pagination import PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import IdPath
from opscaffold.manager.user import repository, service
from opscaffold.manager.user.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix=f"{API_PREFIX}/system/users", tags=["users"])
UserId = IdPath


@router.get("", response_model=Envelope[Page[UserRead]])
async def list_users(
    session: SessionDep,
    page: PageDep,
    keyword: Annotated[str | None, Query(max_length=64)] = None,
    role: Literal["admin", "operator", "viewer"] | None = None,
) -> Envelope[Page[UserRead]]:
    total, users = await repository.list_page(
        session, offset=page.offset, limit=page.page_size, keyword=keyword, role=role
    )
    items = [UserRead.model_validate(u) for u in users]
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.post("", response_model=Envelope[UserRead], status_code=201)
async def create_user(
    body: UserCreate, session: SessionDep, runtime: RuntimeDep, audit: AuditDep
) -> Envelope[UserRead]:
    audit.detail = {"username": body.username, "role": body.role, "status": body.status}
    user = await service.create(session, body, runtime.hasher, runtime.settings.auth.password)
    audit.resource_id = str(user.id)
    return ok(UserRead.model_validate(user))


@router.get("/{id}", response_model=Envelope[UserRead])
async def get_user(id: UserId, session: SessionDep) -> Envelope[UserRead]:
    return ok(UserRead.model_validate(await service.get(session, id)))


@router.put("/{id}", response_model=Envelope[UserRead])
async def update_user(
    id: UserId,
    body: UserUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    audit: AuditDep,
) -> Envelope[UserRead]:
    audit.detail = {"changed": sorted(body.model_dump(exclude_unset=True))}
    await runtime.auth_states.forget_user(id)
    user, _ = await service.update(
        session, id, body, runtime.hasher, runtime.settings.auth.password
    )
    after_commit(session, lambda: runtime.auth_states.forget_user(id))
    return ok(UserRead.model_validate(user))


@router.delete("/{id}", response_model=Envelope[EmptyData])
async def delete_user(
    id: UserId,
    session: SessionDep,
    runtime: RuntimeDep,
    audit: AuditDep,
) -> Envelope[EmptyData]:
    await runtime.auth_states.forget_user(id)
    user = await service.delete(session, id)
    audit.detail = {"username": user.username}
    after_commit(session, lambda: runtime.auth_states.forget_user(id))
    return ok(EmptyData())
