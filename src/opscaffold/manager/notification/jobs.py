"""Background work of notifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from opscaffold.manager.config import Settings
from opscaffold.manager.db import session_factory
from opscaffold.manager.jobs.registry import job
from opscaffold.manager.notification import service


@job("notification.deliver", every=lambda s: s.alert.notify.interval)
async def deliver(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Send due notifications and retry failed ones. Claims, sends and outcomes each need a
    transaction of their own (nothing is sent while one is open), so this job works in
    sessions of its own on the same engine; the tick's session stays unused until the
    runner marks the tick done."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    await service.deliver_due(session_factory(engine), settings.alert.notify)
