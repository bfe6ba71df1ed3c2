from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from opscaffold.manager.deps import SessionDep
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.metric import service
from opscaffold.manager.metric.schemas import NodeMetricRead

router = APIRouter(prefix=f"{API_PREFIX}/nodes", tags=["metrics"])
NodeId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/{id}/metrics", response_model=Envelope[list[NodeMetricRead]])
async def get_node_metrics(
    id: NodeId,
    session: SessionDep,
    start: Annotated[
        datetime | None, Query(description="RFC 3339, inclusive; default: an hour before end")
    ] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive; default: now")] = None,
) -> Envelope[list[NodeMetricRead]]:
    """Reports in [start, end) (at most 31 days), oldest first. Beyond 500 reports, each point
    averages a bucket of ceil(range / 500) seconds and carries the bucket's start time."""
    return ok(await service.history(session, id, start, end))


@router.get("/{id}/metrics/latest", response_model=Envelope[NodeMetricRead | None])
async def get_node_latest_metrics(
    id: NodeId, session: SessionDep
) -> Envelope[NodeMetricRead | None]:
    """The node's newest report; `data` is null while the node has reported nothing."""
    row = await service.latest(session, id)
    return ok(None if row is None else NodeMetricRead.model_validate(row))
