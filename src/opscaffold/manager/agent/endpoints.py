from __future__ import annotations

from fastapi import APIRouter

from opscaffold.manager.agent import service
from opscaffold.manager.agent.schemas import AgentRead
from opscaffold.manager.deps import SessionDep
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import IdPath

router = APIRouter(prefix=f"{API_PREFIX}/nodes", tags=["agents"])
NodeId = IdPath


@router.get("/{id}/agent", response_model=Envelope[AgentRead | None])
async def get_node_agent(id: NodeId, session: SessionDep) -> Envelope[AgentRead | None]:
    """The node's Agent as last reported (status `unknown` while the node is offline); `data` is
    null while the daemon has reported none."""
    return ok(await service.for_node(session, id))
