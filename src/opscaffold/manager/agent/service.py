"""Reading a node's Agent (its Daemon reports it; the ingest path writes it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.agent import repository
from opscaffold.manager.models import Agent
from opscaffold.manager.node import service as node_service


async def for_node(session: AsyncSession, node_id: int) -> Agent | None:
    """The node's agent, or None while its daemon has not reported one."""
    await node_service.ensure_exists(session, node_id)
    return await repository.for_node(session, node_id)
