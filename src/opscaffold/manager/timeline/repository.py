"""SQL of a node's timeline: one bounded query per source, each by its node index."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import (
    Alert,
    AlertRule,
    NodeEvent,
    Task,
    TaskExecution,
    UpdateRecord,
)


async def status_changes(
    session: AsyncSession, node_id: int, start: datetime, end: datetime, limit: int
) -> list[NodeEvent]:
    stmt = (
        sa.select(NodeEvent)
        .where(NodeEvent.node_id == node_id, NodeEvent.at >= start, NodeEvent.at < end)
        .order_by(NodeEvent.at.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def alerts(
    session: AsyncSession, node_id: int, start: datetime, end: datetime, limit: int
) -> list[tuple[Alert, str | None]]:
    """Alerts that were firing at some time in the range (fired before its end, resolved
    after its start or not at all), with their rule's name."""
    stmt = (
        sa.select(Alert, AlertRule.name)
        .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
        .where(
            Alert.node_id == node_id,
            Alert.fired_at < end,
            sa.or_(Alert.resolved_at.is_(None), Alert.resolved_at >= start),
        )
        .order_by(Alert.fired_at.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def updates(
    session: AsyncSession, node_id: int, start: datetime, end: datetime, limit: int
) -> list[UpdateRecord]:
    stmt = (
        sa.select(UpdateRecord)
        .where(
            UpdateRecord.node_id == node_id,
            UpdateRecord.created_at >= start,
            UpdateRecord.created_at < end,
        )
        .order_by(UpdateRecord.created_at.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def task_runs(
    session: AsyncSession, node_id: int, start: datetime, end: datetime, limit: int
) -> list[tuple[TaskExecution, str | None]]:
    """The node's task executions, with their task's name."""
    stmt = (
        sa.select(TaskExecution, Task.name)
        .outerjoin(Task, Task.id == TaskExecution.task_id)
        .where(
            TaskExecution.node_id == node_id,
            TaskExecution.created_at >= start,
            TaskExecution.created_at < end,
        )
        .order_by(TaskExecution.created_at.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]
