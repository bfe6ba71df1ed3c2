"""Background work of the node domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import job
from opscaffold.manager.node import service


@job("node.detect_offline", every=lambda s: s.node.offline_check_interval)
async def detect_offline(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Nodes whose heartbeat deadline has passed go offline (one set-based statement);
    a node that registered and never sent a heartbeat counts from its registration."""
    await service.take_offline(session, now - settings.node.heartbeat_timeout, now)
