from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.models import Node


async def node_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(sa.select(Node.status, sa.func.count()).group_by(Node.status))
        return {status: int(count) for status, count in rows}
