"""Background work of tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import command_bus, job
from opscaffold.manager.task import service
from opscaffold.manager.task.keys import TaskKey


@job("task.time_out", every=lambda s: s.task.check_interval)
async def time_out(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Executions with no final result by their deadline plus the grace: timed out (the
    Agent enforces the timeout itself; this covers nodes that went silent)."""
    await service.time_out_overdue(session, now, settings.task.timeout_grace)


@job("task.fire_schedules", every=lambda s: s.task.schedule_interval)
async def fire_schedules(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Tasks whose cron schedule is due: executed, each fire once across all replicas.
    The signing key is read only when something is due."""
    await service.fire_due(
        session, command_bus(session), lambda: TaskKey.load(settings), settings.task, now
    )
