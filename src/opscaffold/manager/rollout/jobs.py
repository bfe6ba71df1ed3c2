"""Background work of rollouts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import job
from opscaffold.manager.rollout import orchestrator


@job("rollout.advance", every=lambda s: s.rollout.tick_interval)
async def advance(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Fail updates whose node stopped reporting and orders past their rollout's expiry,
    pause on failures or a sick canary, start the next wave where the current one is done,
    and finish rollouts."""
    # The outbox is the truth: streams of every replica find the new orders on their next
    # refresh of it (this bus, without Redis, wakes no one directly).
    await orchestrator.advance_all(
        session,
        CommandBus(),
        settings.server.http.base_url(),
        now,
        settings.rollout.stuck_after,
    )
