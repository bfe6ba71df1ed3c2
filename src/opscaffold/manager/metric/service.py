"""A node's metric history: raw reports for short ranges, bucket averages for long ones."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.kit.clock import as_utc, utcnow
from opscaffold.manager.metric import repository
from opscaffold.manager.metric.schemas import NodeMetricRead
from opscaffold.manager.models import NodeMetricLatest
from opscaffold.manager.node import service as node_service

MAX_POINTS = 500  # what a chart can draw; more only costs bandwidth
MAX_RANGE = timedelta(days=31)
DEFAULT_RANGE = timedelta(hours=1)
PERCENT_LIKE = frozenset(
    {"cpu_usage", "memory_usage", "disk_usage", "load_avg_1", "load_avg_5", "load_avg_15"}
)


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """[start, end) in naive UTC whole seconds: end defaults to now, start to an hour before."""
    end_utc = as_utc(end).replace(microsecond=0) if end else utcnow()
    start_utc = as_utc(start).replace(microsecond=0) if start else end_utc - DEFAULT_RANGE
    if start_utc >= end_utc:
        raise InvalidArgument("start must be before end")
    if end_utc - start_utc > MAX_RANGE:
        raise InvalidArgument(f"the range may span at most {MAX_RANGE.days} days")
    return start_utc, end_utc


async def history(
    session: AsyncSession, node_id: int, start: datetime | None, end: datetime | None
) -> list[NodeMetricRead]:
    """Reports in [start, end), oldest first. Past MAX_POINTS reports, each point is the
    average of a bucket of ceil(range / MAX_POINTS) seconds, stamped with the bucket's start."""
    await node_service.ensure_exists(session, node_id)
    start, end = window(start, end)
    if await repository.count_between(session, node_id, start, end) <= MAX_POINTS:
        rows = await repository.rows_between(session, node_id, start, end)
        return [NodeMetricRead.model_validate(row) for row in rows]
    bucket_s = math.ceil((end - start).total_seconds() / MAX_POINTS)
    buckets = await repository.bucket_averages(session, node_id, start, end, bucket_s)
    return [
        NodeMetricRead(
            node_id=node_id,
            timestamp=start + timedelta(seconds=index * bucket_s),
            **{name: _rounded(name, value) for name, value in averages.items()},
        )
        for index, averages in buckets
    ]


def _rounded(name: str, value: Any) -> float | int | None:
    """Averages come back as Decimal or float per database: percent-like values keep the
    column's two decimals, counts and bytes become whole numbers."""
    if value is None:
        return None
    return round(float(value), 2) if name in PERCENT_LIKE else round(float(value))


async def latest(session: AsyncSession, node_id: int) -> NodeMetricLatest | None:
    """The node's newest report, or None when it has reported nothing yet."""
    await node_service.ensure_exists(session, node_id)
    return await repository.latest(session, node_id)
