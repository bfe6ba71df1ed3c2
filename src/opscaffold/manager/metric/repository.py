"""SQL for metric history (raw rows or 5-minute rollups), the fleet trend and latest reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from opscaffold.manager.kit.sql import dialect_of
from opscaffold.manager.models import NodeMetric, NodeMetricLatest
from opscaffold.manager.models.metric import fleet_metrics_5m, node_metrics_5m
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS


def epoch_seconds(
    dialect: str, column: ColumnElement[datetime] | InstrumentedAttribute[datetime]
) -> ColumnElement[int]:
    """Whole seconds since 1970 of a DATETIME column holding UTC, on each database.

    MySQL's UNIX_TIMESTAMP() would read a DATETIME in the session's time zone, so it counts
    from the epoch with TIMESTAMPDIFF, which has no time zone to apply.
    """
    if dialect == "mysql":
        epoch: ColumnElement[str] = sa.literal_column("'1970-01-01 00:00:00'")
        return sa.func.timestampdiff(
            sa.literal_column("SECOND"), epoch, column, type_=sa.BigInteger
        )
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)


def _in_range(node_id: int, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    # Half-open, so that consecutive windows never count a report twice.
    return [
        NodeMetric.node_id == node_id,
        NodeMetric.timestamp >= start,
        NodeMetric.timestamp < end,
    ]


async def count_between(session: AsyncSession, node_id: int, start: datetime, end: datetime) -> int:
    stmt = sa.select(sa.func.count()).select_from(NodeMetric).where(*_in_range(node_id, start, end))
    return int(await session.scalar(stmt) or 0)


async def rows_between(
    session: AsyncSession, node_id: int, start: datetime, end: datetime
) -> Sequence[NodeMetric]:
    stmt = sa.select(NodeMetric).where(*_in_range(node_id, start, end))
    return (await session.scalars(stmt.order_by(NodeMetric.timestamp))).all()


async def bucket_averages(
    session: AsyncSession, node_id: int, start: datetime, end: datetime, bucket_s: int
) -> list[tuple[int, dict[str, Any]]]:
    """(bucket index since `start`, average of each metric) for every non-empty bucket."""
    start_epoch = int((start - datetime(1970, 1, 1)).total_seconds())
    seconds = epoch_seconds(dialect_of(session), NodeMetric.timestamp) - start_epoch
    columns = [getattr(NodeMetric, name) for name in METRIC_COLUMNS]
    # The bucket is computed in a derived table and grouped outside it: grouping by the
    # expression itself would bind its parameters twice, which PostgreSQL refuses to match.
    inner = (
        sa.select((seconds // bucket_s).label("bucket"), *columns)
        .where(*_in_range(node_id, start, end))
        .subquery()
    )
    averages = [sa.func.avg(inner.c[name]).label(name) for name in METRIC_COLUMNS]
    stmt = sa.select(inner.c.bucket, *averages).group_by(inner.c.bucket).order_by(inner.c.bucket)
    rows = await session.execute(stmt)
    return [
        (int(row.bucket), {name: row._mapping[name] for name in METRIC_COLUMNS}) for row in rows
    ]


def _rollup_range(table: sa.Table, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    return [table.c.bucket >= start, table.c.bucket < end]


async def rollup_points(
    session: AsyncSession, node_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The node's 5-minute averages in [start, end): {"timestamp", <metric>...} each."""
    table = node_metrics_5m
    columns = [table.c[f"{name}_avg"].label(name) for name in METRIC_COLUMNS]
    stmt = (
        sa.select(table.c.bucket.label("timestamp"), *columns)
        .where(table.c.node_id == node_id, *_rollup_range(table, start, end))
        .order_by(table.c.bucket)
    )
    return [dict(row._mapping) for row in await session.execute(stmt)]


async def rollup_bucket_averages(
    session: AsyncSession, node_id: int, start: datetime, end: datetime, bucket_s: int
) -> list[tuple[int, dict[str, Any]]]:
    """(bucket index since `start`, sample-weighted average of each metric) over rollups."""
    table = node_metrics_5m
    where = [table.c.node_id == node_id, *_rollup_range(table, start, end)]
    averages = await _coarse(session, table, where, start, bucket_s, ["avg"])
    return [
        (index, {name: row[f"{name}_avg"] for name in METRIC_COLUMNS}) for index, row in averages
    ]


async def fleet_points(
    session: AsyncSession, group_id: int, start: datetime, end: datetime, bucket_s: int
) -> list[tuple[int, dict[str, Any]]]:
    """(bucket index since `start`, {nodes, samples, <metric>_avg, <metric>_max}) of a scope."""
    table = fleet_metrics_5m
    where = [table.c.group_id == group_id, *_rollup_range(table, start, end)]
    return await _coarse(session, table, where, start, bucket_s, ["avg", "max"])


async def _coarse(
    session: AsyncSession,
    table: sa.Table,
    where: list[ColumnElement[bool]],
    start: datetime,
    bucket_s: int,
    kinds: list[str],
) -> list[tuple[int, dict[str, Any]]]:
    """Merge 5-minute rollups into buckets of `bucket_s`: averages weighted by their samples,
    the maximum of maxima, the most nodes seen."""
    start_epoch = int((start - datetime(1970, 1, 1)).total_seconds())
    seconds = epoch_seconds(dialect_of(session), table.c.bucket) - start_epoch
    inner = sa.select((seconds // bucket_s).label("bucket_index"), table).where(*where).subquery()
    weight = inner.c.samples
    merged: list[ColumnElement[Any]] = []
    for name in METRIC_COLUMNS:
        if "avg" in kinds:
            value = inner.c[f"{name}_avg"]
            counted = sa.func.sum(sa.case((value.is_not(None), weight), else_=0))
            merged.append(
                (sa.func.sum(value * weight) / sa.func.nullif(counted, 0)).label(f"{name}_avg")
            )
        if "max" in kinds:
            merged.append(sa.func.max(inner.c[f"{name}_max"]).label(f"{name}_max"))
    if "nodes" in inner.c:
        merged.append(sa.func.max(inner.c.nodes).label("nodes"))
    merged.append(sa.func.sum(weight).label("samples"))
    stmt = (
        sa.select(inner.c.bucket_index, *merged)
        .group_by(inner.c.bucket_index)
        .order_by(inner.c.bucket_index)
    )
    rows = await session.execute(stmt)
    return [(int(row.bucket_index), dict(row._mapping)) for row in rows]


async def latest(session: AsyncSession, node_id: int) -> NodeMetricLatest | None:
    return await session.get(NodeMetricLatest, node_id)
