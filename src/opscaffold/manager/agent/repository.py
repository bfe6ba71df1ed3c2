"""SQL for agents."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import Agent


async def for_node(session: AsyncSession, node_id: int) -> Agent | None:
    return (await session.scalars(sa.select(Agent).where(Agent.node_id == node_id))).first()


async def for_nodes(session: AsyncSession, node_ids: Sequence[int]) -> dict[int, Agent]:
    """The agents of a page of nodes, in one query."""
    if not node_ids:
        return {}
    rows = await session.scalars(sa.select(Agent).where(Agent.node_id.in_(node_ids)))
    return {agent.node_id: agent for agent in rows}
