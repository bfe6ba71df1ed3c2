"""5-minute rollups, computed from raw rows one bucket at a time.

The ingest flusher bumps a bucket's row in `metric_rollup_pending` in the same transaction
as the raw rows it writes. Once a bucket has ended (plus `metrics.rollup_delay`), the job
recomputes it from every raw row it holds, replacing its rollups, and removes the pending
row only if no batch bumped it meanwhile. So a rollup never double counts (it is recomputed,
never added to), a report arriving late re-queues its bucket, and a job that stops or
restarts resumes from the pending rows, however far behind.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from opscaffold.manager.config import MetricsSettings
from opscaffold.manager.kit.sql import upsert
from opscaffold.manager.models import NodeMetric
from opscaffold.manager.models.metric import (
    FLEET,
    ROLLUP_SECONDS,
    fleet_metrics_5m,
    metric_rollup_pending,
    node_metrics_5m,
)
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS, METRIC_FIELDS
from opscaffold.manager.models.node import Node, NodeGroup

BUCKET = timedelta(seconds=ROLLUP_SECONDS)
EPOCH = datetime(1970, 1, 1)
INTEGER_COLUMNS = frozenset(field.name for field in METRIC_FIELDS if field.is_integer)


def bucket_of(at: datetime) -> datetime:
    seconds = int((at - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % ROLLUP_SECONDS)


async def mark_pending(session: AsyncSession, timestamps: Iterable[datetime]) -> None:
    """Queue the buckets of freshly written raw rows (in the writer's transaction)."""
    buckets = sorted({bucket_of(at) for at in timestamps})  # one lock order for every writer
    if not buckets:
        return
    table = metric_rollup_pending
    # A literal: a bound parameter in the update clause breaks the driver's multi-row insert.
    bump = table.c.version + sa.literal_column("1")
    stmt = upsert(session, table, ["bucket"], lambda _: {"version": bump})
    await session.execute(stmt, [{"bucket": b, "version": 1} for b in buckets])


@dataclass
class Pass:
    buckets: list[datetime]
    seconds: float
    left: int  # due buckets left for the next run (the time budget ran out)


async def run_pass(
    engine: AsyncEngine, settings: MetricsSettings, now: datetime, budget: timedelta
) -> Pass:
    """Roll up every due bucket, oldest first, each in its own transaction and connection
    (SQLite has one connection for everyone: ingest gets it between buckets), within
    `budget`."""
    started = time.monotonic()
    async with engine.connect() as conn:
        due = await _due(conn, now - BUCKET - settings.rollup_delay)
    done: list[datetime] = []
    for bucket, version in due:
        if time.monotonic() - started > budget.total_seconds():
            break
        async with engine.connect() as conn:
            if conn.dialect.name in ("mysql", "mariadb"):
                # Consistent (non-locking) reads of raw rows: no gap locks to stall ingest.
                conn = await conn.execution_options(isolation_level="READ COMMITTED")
            async with conn.begin():
                await roll_up_bucket(conn, bucket)
                await conn.execute(
                    sa.delete(metric_rollup_pending).where(
                        metric_rollup_pending.c.bucket == bucket,
                        metric_rollup_pending.c.version == version,
                    )
                )
        done.append(bucket)
    return Pass(done, time.monotonic() - started, len(due) - len(done))


async def _due(conn: AsyncConnection, horizon: datetime) -> list[tuple[datetime, int]]:
    table = metric_rollup_pending
    rows = await conn.execute(
        sa.select(table.c.bucket, table.c.version)
        .where(table.c.bucket <= horizon)
        .order_by(table.c.bucket)
    )
    return [(bucket, int(version)) for bucket, version in rows]


async def roll_up_bucket(conn: AsyncConnection, bucket: datetime) -> None:
    """Recompute one bucket: every node's rollup, then the fleet's and each group's."""
    await _node_rollups(conn, bucket)
    await _fleet_rollups(conn, bucket)


def _in_bucket(bucket: datetime) -> list[sa.ColumnElement[bool]]:
    return [NodeMetric.timestamp >= bucket, NodeMetric.timestamp < bucket + BUCKET]


def _average(name: str, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Percent-like averages keep the column's two decimals; counts and bytes are whole."""
    if name in INTEGER_COLUMNS:
        return sa.cast(sa.func.round(value), sa.BigInteger)
    return sa.func.round(value, 2)


async def _node_rollups(conn: AsyncConnection, bucket: datetime) -> None:
    aggregates: list[sa.ColumnElement[Any]] = []
    for name in METRIC_COLUMNS:
        column = getattr(NodeMetric, name)
        aggregates += [_average(name, sa.func.avg(column)), sa.func.max(column)]
    select = (
        sa.select(NodeMetric.node_id, sa.literal(bucket, sa.DateTime), sa.func.count(), *aggregates)
        .where(*_in_bucket(bucket))
        .group_by(NodeMetric.node_id)
    )
    columns = [c.name for c in node_metrics_5m.c]
    stmt = upsert(
        conn,
        node_metrics_5m,
        ["node_id", "bucket"],
        lambda new: {c: new[c] for c in columns if c not in ("node_id", "bucket")},
    )
    await conn.execute(stmt.from_select(columns, select))


async def _fleet_rollups(conn: AsyncConnection, bucket: datetime) -> None:
    """The fleet's and each group subtree's aggregates, from the same raw rows.

    The database sums per direct group (a few hundred rows); folding them up the group tree
    happens here, since a node counts in its group and in every ancestor.
    """
    sums: list[sa.ColumnElement[Any]] = []
    for name in METRIC_COLUMNS:
        column = getattr(NodeMetric, name)
        sums += [sa.func.sum(column), sa.func.count(column), sa.func.max(column)]
    stmt = (
        sa.select(
            Node.group_id,
            sa.func.count(sa.distinct(NodeMetric.node_id)),
            sa.func.count(),
            *sums,
        )
        .join(Node, Node.id == NodeMetric.node_id)
        .where(*_in_bucket(bucket))
        .group_by(Node.group_id)
    )
    direct = (await conn.execute(stmt)).all()
    parents = dict((await conn.execute(sa.select(NodeGroup.id, NodeGroup.parent_id))).all())
    scopes: dict[int, _Totals] = defaultdict(_Totals)
    for row in direct:
        group_id = row[0]
        for scope in (FLEET, *_ancestry(group_id, parents)):
            scopes[scope].add(row[1:])
    await conn.execute(sa.delete(fleet_metrics_5m).where(fleet_metrics_5m.c.bucket == bucket))
    if scopes:
        await conn.execute(
            sa.insert(fleet_metrics_5m),
            [totals.row(scope, bucket) for scope, totals in sorted(scopes.items())],
        )


def _ancestry(group_id: int | None, parents: Mapping[int, int | None]) -> list[int]:
    """The group and its ancestors; a node in no group counts in the fleet only."""
    chain: list[int] = []
    while group_id is not None and group_id not in chain:
        chain.append(group_id)
        group_id = parents.get(group_id)
    return chain


class _Totals:
    def __init__(self) -> None:
        self.nodes = 0
        self.samples = 0
        self.sum = dict.fromkeys(METRIC_COLUMNS, 0.0)
        self.count = dict.fromkeys(METRIC_COLUMNS, 0)
        self.max: dict[str, float | None] = dict.fromkeys(METRIC_COLUMNS)

    def add(self, row: Sequence[Any]) -> None:
        self.nodes += int(row[0])
        self.samples += int(row[1])
        for i, name in enumerate(METRIC_COLUMNS):
            total, count, peak = row[2 + 3 * i : 5 + 3 * i]
            if count:
                self.sum[name] += float(total)
                self.count[name] += int(count)
                current = self.max[name]
                self.max[name] = float(peak) if current is None else max(current, float(peak))

    def row(self, scope: int, bucket: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {
            "group_id": scope,
            "bucket": bucket,
            "nodes": self.nodes,
            "samples": self.samples,
        }
        for name in METRIC_COLUMNS:
            count = self.count[name]
            average = self.sum[name] / count if count else None
            peak = self.max[name]
            if name in INTEGER_COLUMNS:
                values[f"{name}_avg"] = None if average is None else round(average)
                values[f"{name}_max"] = None if peak is None else round(peak)
            else:
                values[f"{name}_avg"] = None if average is None else round(average, 2)
                values[f"{name}_max"] = peak
        return values
