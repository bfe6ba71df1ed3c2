from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from opscaffold.manager.audit import repository
from opscaffold.manager.audit.schemas import AuditLogRead
from opscaffold.manager.deps import SessionDep
from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.kit.clock import as_utc
from opscaffold.manager.kit.envelope import Envelope, Page
from opscaffold.manager.kit.pagination import PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import Id, StorableTime

router = APIRouter(prefix=f"{API_PREFIX}/system/audit-logs", tags=["audit"])


@router.get("", response_model=Envelope[Page[AuditLogRead]])
async def list_audit_logs(
    session: SessionDep,
    page: PageDep,
    user_id: Annotated[Id | None, Query()] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource_type: Annotated[str | None, Query(max_length=32)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["success", "failed"] | None = None,
    start: Annotated[StorableTime | None, Query(description="RFC 3339, inclusive")] = None,
    end: Annotated[StorableTime | None, Query(description="RFC 3339, exclusive")] = None,
) -> Envelope[Page[AuditLogRead]]:
    start_utc = as_utc(start) if start else None
    end_utc = as_utc(end) if end else None
    if start_utc and end_utc and start_utc >= end_utc:
        raise InvalidArgument("start must be before end")
    total, rows = await repository.list_page(
        session,
        offset=page.offset,
        limit=page.page_size,
        user_id=user_id,
        username=username,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        status=status,
        start=start_utc,
        end=end_utc,
    )
    items = [AuditLogRead.model_validate(r) for r in rows]
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))
