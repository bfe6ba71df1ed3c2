"""SQL for a node's metric history and its latest report."""

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
from opscaffold.manager.models.node import METRIC_COLUMNS


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


async def latest(session: AsyncSession, node_id: int) -> NodeMetricLatest | None:
    return await session.get(NodeMetricLatest, node_id)
