"""A node's timeline: status changes, alerts, updates and task runs merged in time order, so a
chart can show what happened to the node over its metrics."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.metric.service import window
from opscaffold.manager.models import Alert, NodeEvent, TaskExecution, UpdateRecord
from opscaffold.manager.node import service as node_service
from opscaffold.manager.timeline import repository
from opscaffold.manager.timeline.schemas import (
    AlertEvent,
    StatusChange,
    TaskEvent,
    Timeline,
    TimelineEvent,
    UpdateEvent,
)

DEFAULT_RANGE = timedelta(hours=24)


async def timeline(
    session: AsyncSession,
    node_id: int,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> Timeline:
    """The node's events in [start, end) (default: the last 24 h), the newest `limit` of
    them, oldest first."""
    await node_service.ensure_exists(session, node_id)
    start, end = window(start or (end or utcnow()) - DEFAULT_RANGE, end)
    # Each source gives its newest `limit`: together they hold the newest `limit` of all.
    span = (session, node_id, start, end, limit)
    events: list[TimelineEvent] = [
        *(_status(e) for e in await repository.status_changes(*span)),
        *(_alert(a, rule) for a, rule in await repository.alerts(*span)),
        *(_update(r) for r in await repository.updates(*span)),
        *(_task(run, task) for run, task in await repository.task_runs(*span)),
    ]
    events.sort(key=lambda event: event.at, reverse=True)
    kept = sorted(events[:limit], key=lambda event: event.at)
    return Timeline(start=start, end=end, events=kept, truncated=len(events) > limit)


def _status(event: NodeEvent) -> StatusChange:
    return StatusChange(
        at=event.at, event=event.event, from_status=event.from_status, to_status=event.to_status
    )


def _alert(alert: Alert, rule_name: str | None) -> AlertEvent:
    return AlertEvent(
        at=alert.fired_at,
        alert_id=alert.id,
        rule_name=rule_name,
        metric=alert.metric,
        severity=alert.severity,
        status=alert.status,
        current_value=alert.current_value,
        threshold=alert.threshold,
        resolved_at=alert.resolved_at,
    )


def _update(record: UpdateRecord) -> UpdateEvent:
    return UpdateEvent(
        at=record.created_at,
        record_id=record.id,
        batch_id=record.batch_id,
        component=record.component,
        from_version=record.from_version,
        to_version=record.to_version,
        status=record.status,
        finished_at=record.finished_at,
    )


def _task(run: TaskExecution, task_name: str | None) -> TaskEvent:
    return TaskEvent(
        at=run.created_at,
        execution_id=run.execution_id,
        task_id=run.task_id,
        task_name=task_name,
        status=run.status,
        exit_code=run.exit_code,
        finished_at=run.finished_at,
    )
