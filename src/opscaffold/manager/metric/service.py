"""Metric history: raw reports for recent short ranges, 5-minute rollups for the rest.

Raw rows are kept for days, rollups for weeks; a chart asks for at most MAX_POINTS points,
so a range long enough to need buckets of 5 minutes or more reads the rollups (hundreds of
rows, not tens of thousands), and so does any range older than the raw retention.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.config import MetricsSettings
from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.ingest.validation import CLOCK_SKEW
from opscaffold.manager.kit.clock import as_utc, utcnow
from opscaffold.manager.metric import repository
from opscaffold.manager.metric.rollup import bucket_of
from opscaffold.manager.metric.schemas import FleetTrendPoint, NodeMetricRead
from opscaffold.manager.models import NodeMetricLatest
from opscaffold.manager.models.metric import FLEET, ROLLUP_SECONDS
from opscaffold.manager.models.metric_fields import FIELDS_BY_NAME, METRIC_COLUMNS
from opscaffold.manager.node import service as node_service

MAX_POINTS = 500  # what a chart can draw; more only costs bandwidth
MAX_RANGE = timedelta(days=31)
DEFAULT_RANGE = timedelta(hours=1)
TREND_RANGE = timedelta(hours=24)
TREND_METRICS = ("cpu_usage", "memory_usage", "disk_usage")


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """[start, end) in naive UTC whole seconds: end defaults to now, start to an hour before."""
    # The range is measured to the end asked for; the slack of a default end is not counted.
    nominal_end = _exclusive_end(end) if end else utcnow()
    end_utc = _exclusive_end(end)
    start_utc = as_utc(start).replace(microsecond=0) if start else nominal_end - DEFAULT_RANGE
    if start_utc >= end_utc:
        raise InvalidArgument("start must be before end")
    if nominal_end - start_utc > MAX_RANGE:
        raise InvalidArgument(f"the range may span at most {MAX_RANGE.days} days")
    return start_utc, end_utc


def _exclusive_end(end: datetime | None) -> datetime:
    # Reports are stamped in whole seconds, so an exclusive end rounds up, never down: a
    # truncated "now" would hide a report made this very second. A default end also takes in
    # reports stamped by a clock slightly ahead of ours, which ingestion accepts.
    if end is None:
        return utcnow() + CLOCK_SKEW + timedelta(seconds=1)
    end_utc = as_utc(end)
    whole = end_utc.replace(microsecond=0)
    return whole if whole == end_utc else whole + timedelta(seconds=1)


async def history(
    session: AsyncSession,
    node_id: int,
    start: datetime | None,
    end: datetime | None,
    settings: MetricsSettings,
) -> list[NodeMetricRead]:
    """Reports in [start, end), oldest first; past MAX_POINTS, each point averages a bucket
    and is stamped with the bucket's start."""
    await node_service.ensure_exists(session, node_id)
    start, end = window(start, end)
    raw_from = utcnow() - timedelta(days=settings.raw_retention_days)
    if start >= raw_from and _bucket_seconds(start, end) < ROLLUP_SECONDS:
        return await _from_raw(session, node_id, start, end)
    return await _from_rollups(session, node_id, start, end)


def _bucket_seconds(start: datetime, end: datetime) -> int:
    return math.ceil((end - start).total_seconds() / MAX_POINTS)


async def _from_raw(
    session: AsyncSession, node_id: int, start: datetime, end: datetime
) -> list[NodeMetricRead]:
    if await repository.count_between(session, node_id, start, end) <= MAX_POINTS:
        rows = await repository.rows_between(session, node_id, start, end)
        return [NodeMetricRead.model_validate(row) for row in rows]
    bucket_s = _bucket_seconds(start, end)
    buckets = await repository.bucket_averages(session, node_id, start, end, bucket_s)
    return _points(node_id, start, bucket_s, buckets)


async def _from_rollups(
    session: AsyncSession, node_id: int, start: datetime, end: datetime
) -> list[NodeMetricRead]:
    first = bucket_of(start)
    bucket_s = _rollup_multiple(_bucket_seconds(first, end))
    if bucket_s == ROLLUP_SECONDS:
        rows = await repository.rollup_points(session, node_id, first, end)
        return [NodeMetricRead(node_id=node_id, **_rounded_all(row)) for row in rows]
    buckets = await repository.rollup_bucket_averages(session, node_id, first, end, bucket_s)
    return _points(node_id, first, bucket_s, buckets)


def _rollup_multiple(seconds: int) -> int:
    """Buckets made of whole 5-minute rollups."""
    return max(1, math.ceil(seconds / ROLLUP_SECONDS)) * ROLLUP_SECONDS


def _points(
    node_id: int, start: datetime, bucket_s: int, buckets: list[tuple[int, dict[str, Any]]]
) -> list[NodeMetricRead]:
    return [
        NodeMetricRead(
            node_id=node_id,
            timestamp=start + timedelta(seconds=index * bucket_s),
            **{name: _rounded(name, averages[name]) for name in METRIC_COLUMNS},
        )
        for index, averages in buckets
    ]


def _rounded_all(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "timestamp" else _rounded(k, v) for k, v in row.items()}


async def fleet_trend(
    session: AsyncSession, group_id: int | None, start: datetime | None, end: datetime | None
) -> list[FleetTrendPoint]:
    """The fleet's (or a group subtree's) average and maximum per bucket: 24 h by default."""
    if group_id is not None:
        await node_service.ensure_group_exists(session, group_id)
    start, end = window(start or utcnow() - TREND_RANGE, end)
    first = bucket_of(start)
    bucket_s = _rollup_multiple(_bucket_seconds(first, end))
    scope = FLEET if group_id is None else group_id
    rows = await repository.fleet_points(session, scope, first, end, bucket_s)
    return [
        FleetTrendPoint(
            timestamp=first + timedelta(seconds=index * bucket_s),
            nodes=int(row["nodes"]),
            samples=int(row["samples"]),
            **{
                f"{name}_{kind}": _rounded(name, row[f"{name}_{kind}"])
                for name in TREND_METRICS
                for kind in ("avg", "max")
            },
        )
        for index, row in rows
    ]


def _rounded(name: str, value: Any) -> float | int | None:
    """Averages come back as Decimal or float per database: percent-like values keep the
    column's two decimals, counts and bytes become whole numbers."""
    if value is None:
        return None
    return round(float(value)) if FIELDS_BY_NAME[name].is_integer else round(float(value), 2)


async def latest(session: AsyncSession, node_id: int) -> NodeMetricLatest | None:
    """The node's newest report, or None when it has reported nothing yet."""
    await node_service.ensure_exists(session, node_id)
    return await repository.latest(session, node_id)
