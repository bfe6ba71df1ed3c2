from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command import service
from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import job


@job("command.expire", every=lambda _: timedelta(minutes=1))
async def expire(session: AsyncSession, settings: Settings, now: datetime) -> None:
    await service.expire_due(session, now)
