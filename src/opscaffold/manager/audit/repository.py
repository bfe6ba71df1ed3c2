"""SQL for the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.kit.sql import upsert
from opscaffold.manager.models import AuditLog


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(sa.insert(AuditLog).values(**row))


async def insert_folded(session: AsyncSession, row: dict[str, Any]) -> None:
    """Insert, or add one to the count of the row with the same fold key."""
    stmt = upsert(
        session, AuditLog, ["fold_key"], lambda _: {"occurrences": AuditLog.occurrences + 1}
    )
    await session.execute(stmt.values(**row))


async def folded_for_update(
    session: AsyncSession, fold_key: str
) -> tuple[int, dict[str, Any] | None]:
    """Count and detail of a folded row, locked until the transaction ends."""
    row = (
        await session.execute(
            sa.select(AuditLog.occurrences, AuditLog.detail)
            .where(AuditLog.fold_key == fold_key)
            .with_for_update()
        )
    ).one()
    return int(row.occurrences), row.detail


async def set_folded_detail(session: AsyncSession, fold_key: str, detail: dict[str, Any]) -> None:
    await session.execute(
        sa.update(AuditLog).where(AuditLog.fold_key == fold_key).values(detail=detail)
    )


def _filters(
    *,
    user_id: int | None,
    username: str | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    pairs: list[tuple[Any, Any]] = [
        (AuditLog.user_id, user_id),
        (AuditLog.username, username),
        (AuditLog.action, action),
        (AuditLog.resource_type, resource_type),
        (AuditLog.resource_id, resource_id),
        (AuditLog.status, status),
    ]
    conditions.extend(column == value for column, value in pairs if value is not None)
    if start is not None:
        conditions.append(AuditLog.created_at >= start)
    if end is not None:
        conditions.append(AuditLog.created_at < end)
    return conditions


async def list_page(
    session: AsyncSession, *, offset: int, limit: int, **filters: Any
) -> tuple[int, Sequence[AuditLog]]:
    conditions = _filters(**filters)
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(AuditLog).where(*conditions)
    )
    rows = await session.scalars(
        sa.select(AuditLog)
        .where(*conditions)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), rows.all()
