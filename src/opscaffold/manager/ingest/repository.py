"""Batched writes of what daemons report: heartbeats, agent rows, metric rows, liveness.

Every write filters on the node still existing, so a node deleted while its reports were
queued is not brought back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.ingest.validation import AgentRow, MetricRow
from opscaffold.manager.kit.sql import upsert
from opscaffold.manager.models import Agent, Node, NodeEvent, NodeMetric, NodeMetricLatest
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS


async def node_statuses(session: AsyncSession, node_ids: Iterable[int]) -> dict[int, str]:
    rows = await session.execute(sa.select(Node.id, Node.status).where(Node.id.in_(list(node_ids))))
    return {node_id: status for node_id, status in rows}


async def mark_online(session: AsyncSession, statuses: dict[int, str], now: datetime) -> list[int]:
    """One UPDATE for the whole batch; records a transition for nodes that were not online."""
    if not statuses:
        return []
    await session.execute(
        sa.update(Node)
        .where(Node.id.in_(list(statuses)))
        .values(last_heartbeat=now, status="online")
    )
    came_online = [node_id for node_id, status in statuses.items() if status != "online"]
    await add_events(session, came_online, "online", {n: statuses[n] for n in came_online}, now)
    return came_online


async def add_events(
    session: AsyncSession,
    node_ids: Sequence[int],
    to_status: str,
    from_status: dict[int, str],
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    if node_ids:
        rows = [
            {
                "node_id": node_id,
                "event": to_status,
                "from_status": from_status.get(node_id),
                "to_status": to_status,
                "at": at,
                "detail": detail,
            }
            for node_id in node_ids
        ]
        await session.execute(sa.insert(NodeEvent), rows)


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


def past_deadline(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Online nodes whose last heartbeat is older than `cutoff`, and nodes that registered
    before it and were never heard from since (their deadline runs from registration)."""
    return sa.or_(
        sa.and_(Node.status == "online", Node.last_heartbeat < cutoff),
        sa.and_(
            Node.status == "unknown",
            sa.func.coalesce(Node.last_heartbeat, Node.created_at) < cutoff,
        ),
    )


async def mark_offline(session: AsyncSession, cutoff: datetime, now: datetime) -> list[int]:
    """Nodes past their heartbeat deadline go offline, set-based."""
    stale = sa.select(Node.id, Node.status).where(past_deadline(cutoff)).with_for_update()
    before = {node_id: status for node_id, status in await session.execute(stale)}
    node_ids = list(before)
    if node_ids:
        await session.execute(
            sa.update(Node)
            .where(Node.id.in_(node_ids), past_deadline(cutoff))
            .values(status="offline")
        )
        await add_events(session, node_ids, "offline", before, now, {"reason": "heartbeat timeout"})
    return node_ids
