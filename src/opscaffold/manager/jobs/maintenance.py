from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth import repository as auth_repository
from opscaffold.manager.config import Settings
from opscaffold.manager.jobs import repository
from opscaffold.manager.jobs.registry import job

KEEP_CLAIMS = timedelta(days=1)


@job("jobs.prune_claims", every=lambda _: timedelta(hours=1))
async def prune_claims(session: AsyncSession, settings: Settings, now: datetime) -> None:
    await repository.prune(session, now - KEEP_CLAIMS)


@job("auth.prune_sessions", every=lambda _: timedelta(hours=1))
async def prune_sessions(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Token families past their refresh lifetime can no longer be used: drop them."""
    await auth_repository.delete_expired(session, now)
