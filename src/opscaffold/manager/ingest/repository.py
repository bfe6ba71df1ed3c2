"""Batched writes of what daemons report: agent rows and metric rows (their nodes' liveness
is the node domain's).

Only nodes found still existing are written for, so a node deleted while its reports were
queued is not brought back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.ingest.validation import AgentRow, MetricRow
from opscaffold.manager.kit.sql import upsert
from opscaffold.manager.models import Agent, NodeMetric, NodeMetricLatest
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS


async def upsert_agents(session: AsyncSession, rows: Sequence[AgentRow], now: datetime) -> None:
    if not rows:
        return
    columns = list(rows[0].values)
    stmt = upsert(
        session,
        Agent,
        ["node_id"],
        lambda new: {c: new[c] for c in [*columns, "updated_at"]},
    )
    await session.execute(
        stmt, [{"node_id": r.node_id, **r.values, "updated_at": now} for r in rows]
    )


async def insert_metrics(session: AsyncSession, rows: Sequence[MetricRow]) -> None:
    """A report resent after a lost acknowledgement hits the unique key and is skipped."""
    if rows:
        stmt = upsert(session, NodeMetric, ["node_id", "timestamp"], None)
        await session.execute(
            stmt, [{"node_id": r.node_id, "timestamp": r.timestamp, **r.values} for r in rows]
        )


async def upsert_latest(session: AsyncSession, rows: Sequence[MetricRow]) -> None:
    """Keep each node's newest report; an older one arriving late leaves it alone."""
    if not rows:
        return
    table = NodeMetricLatest.__table__
    current = table.c.timestamp

    def newer_only(new: Any) -> dict[str, Any]:
        is_newer = new["timestamp"] >= current
        # Timestamp last: on MySQL the SET clauses see the row as already updated.
        return {
            **{c: sa.case((is_newer, new[c]), else_=table.c[c]) for c in METRIC_COLUMNS},
            "timestamp": sa.case((is_newer, new["timestamp"]), else_=current),
        }

    stmt = upsert(session, table, ["node_id"], newer_only)
    await session.execute(
        stmt, [{"node_id": r.node_id, "timestamp": r.timestamp, **r.values} for r in rows]
    )
