"""A node's timeline over REST: `GET /nodes/:id/timeline`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from opscaffold.manager.deps import SessionDep
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import IdPath, StorableTime
from opscaffold.manager.timeline import service
from opscaffold.manager.timeline.schemas import Timeline

router = APIRouter(prefix=f"{API_PREFIX}/nodes", tags=["nodes"])
MAX_EVENTS = 2000


@router.get("/{id}/timeline", response_model=Envelope[Timeline])
async def get_node_timeline(
    id: IdPath,
    session: SessionDep,
    start: Annotated[
        StorableTime | None, Query(description="RFC 3339, inclusive; default: 24 h before end")
    ] = None,
    end: Annotated[
        StorableTime | None, Query(description="RFC 3339, exclusive; default: now")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS, description="at most this many events")] = 500,
) -> Envelope[Timeline]:
    """What happened to the node, in time order: status changes, alerts (placed at their
    firing), updates and task runs (at their creation). Ranges reach back at most 31 days."""
    return ok(await service.timeline(session, id, start, end, limit))
