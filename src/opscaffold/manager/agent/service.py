"""Reading a node's Agent (its Daemon reports it; the ingest path writes it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.agent import repository
from opscaffold.manager.agent.schemas import AgentRead
from opscaffold.manager.errors import NodeNotFound
from opscaffold.manager.node import repository as node_repository


async def for_node(session: AsyncSession, node_id: int) -> AgentRead | None:
    """The node's agent, or None while its daemon has not reported one."""
    node = await node_repository.get(session, node_id)
    if node is None:
        raise NodeNotFound()
    agent = await repository.for_node(session, node_id)
    return None if agent is None else AgentRead.seen(agent, node.status)
