"""The dashboard's aggregates: one grouped query per figure, none per node."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import Agent, Alert, AlertRule, Node

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class NodeFigures:
    """One group of nodes that agree on everything the dashboard counts, and how many."""

    status: str
    daemon_version: str | None
    has_agent: bool
    agent_version: str | None
    agent_running: bool
    count: int


async def node_figures(session: AsyncSession) -> list[NodeFigures]:
    """Every node figure from one pass over the nodes and their agents: grouped by what the
    dashboard counts, so the result holds a row per combination, not per node."""
    has_agent = Agent.id.is_not(None)
    running = sa.func.coalesce(Agent.status == "running", sa.false())
    grouped = (Node.status, Node.daemon_version, has_agent, Agent.version, running)
    stmt = (
        sa.select(*grouped, sa.func.count())
        .outerjoin(Agent, Agent.node_id == Node.id)
        .group_by(*grouped)
    )
    return [
        NodeFigures(str(status), daemon, bool(agent), version, bool(is_running), int(n))
        for status, daemon, agent, version, is_running, n in await session.execute(stmt)
    ]


async def firing_by_severity(session: AsyncSession) -> dict[str, int]:
    stmt = (
        sa.select(Alert.severity, sa.func.count())
        .where(Alert.status == "firing")
        .group_by(Alert.severity)
    )
    return {str(severity): int(n) for severity, n in await session.execute(stmt)}


async def recent_alerts(
    session: AsyncSession, limit: int
) -> list[tuple[Alert, str | None, str | None]]:
    """The newest alerts with their rule's and node's names."""
    stmt = (
        sa.select(Alert, AlertRule.name, Node.hostname)
        .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Node, Node.id == Alert.node_id)
        .order_by(Alert.fired_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in await session.execute(stmt)]
