from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from opscaffold.manager.deps import RuntimeDep, SessionDep
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import BIGINT_MAX, IdPath, StorableTime
from opscaffold.manager.metric import service
from opscaffold.manager.metric.schemas import FleetTrendPoint, NodeMetricRead

router = APIRouter(prefix=f"{API_PREFIX}/nodes", tags=["metrics"])
fleet_router = APIRouter(prefix=f"{API_PREFIX}/metrics", tags=["metrics"])
END_HELP = "RFC 3339, exclusive (rounded up to the second); default: now, this second included"
NodeId = IdPath


@router.get("/{id}/metrics", response_model=Envelope[list[NodeMetricRead]])
async def get_node_metrics(
    id: NodeId,
    session: SessionDep,
    runtime: RuntimeDep,
    start: Annotated[
        StorableTime | None,
        Query(description="RFC 3339, inclusive; default: an hour before end"),
    ] = None,
    end: Annotated[StorableTime | None, Query(description=END_HELP)] = None,
) -> Envelope[list[NodeMetricRead]]:
    """Reports in [start, end) (at most 31 days), oldest first. Beyond 500 reports, each point
    averages a bucket of ceil(range / 500) seconds and carries the bucket's start time.
    Ranges that need buckets of 5 minutes or more, or reach back past the raw retention, are
    served from 5-minute rollups (buckets then span whole rollups)."""
    return ok(await service.history(session, id, start, end, runtime.settings.metrics))


@fleet_router.get("/trend", response_model=Envelope[list[FleetTrendPoint]])
async def get_fleet_trend(
    session: SessionDep,
    group_id: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="a group and its sub-groups")
    ] = None,
    start: Annotated[
        StorableTime | None,
        Query(description="RFC 3339, inclusive; default: 24 hours before end"),
    ] = None,
    end: Annotated[StorableTime | None, Query(description=END_HELP)] = None,
) -> Envelope[list[FleetTrendPoint]]:
    """Average and maximum cpu, memory and disk usage of the whole fleet (or of a group and
    its sub-groups) per 5-minute bucket, from rollups; past 500 buckets, buckets merge."""
    return ok(await service.fleet_trend(session, group_id, start, end))


@router.get("/{id}/metrics/latest", response_model=Envelope[NodeMetricRead | None])
async def get_node_latest_metrics(
    id: NodeId, session: SessionDep
) -> Envelope[NodeMetricRead | None]:
    """The node's newest report; `data` is null while the node has reported nothing."""
    row = await service.latest(session, id)
    return ok(None if row is None else NodeMetricRead.model_validate(row))
