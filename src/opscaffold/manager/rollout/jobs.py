"""Background work of rollouts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import command_bus, job
from opscaffold.manager.rollout import orchestrator


@job("rollout.advance", every=lambda s: s.rollout.tick_interval)
async def advance(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Fail updates whose node stopped reporting and orders past their rollout's expiry,
    pause on failures or a sick canary, start the next wave where the current one is done,
    and finish rollouts."""
    await orchestrator.advance_all(
        session,
        command_bus(session),
        settings.server.http.base_url(),
        now,
        settings.rollout.stuck_after,
    )
