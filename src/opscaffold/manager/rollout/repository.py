"""SQL of update records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import UpdateRecord
from opscaffold.manager.rollout.states import UpdateState, sources


async def lock_state(session: AsyncSession, record_id: int, node_id: int) -> UpdateState | None:
    """The record's state, locked until the transaction ends, if it exists and is the node's.
    A locking read sees the latest committed state, whatever the transaction's snapshot."""
    stmt = (
        sa.select(UpdateRecord.status)
        .where(UpdateRecord.id == record_id, UpdateRecord.node_id == node_id)
        .with_for_update()
    )
    state: UpdateState | None = await session.scalar(stmt)
    return state


async def move(
    session: AsyncSession,
    record_id: int,
    node_id: int,
    target: UpdateState,
    values: dict[str, Any],
) -> bool:
    """Move the node's record to `target` if the table allows it from its current state."""
    result = await session.execute(
        sa.update(UpdateRecord)
        .where(
            UpdateRecord.id == record_id,
            UpdateRecord.node_id == node_id,
            UpdateRecord.status.in_(sources(target)),
        )
        .values(status=target, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
