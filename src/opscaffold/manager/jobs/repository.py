"""SQL for job claims: a tick is a row, and the row is the fence."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import JobClaim


async def claim(
    session: AsyncSession, job: str, tick: datetime, replica: str, now: datetime, lease: datetime
) -> bool:
    """Take the tick: insert its row, or take over one whose holder's lease ran out unfinished."""
    try:
        async with session.begin_nested():
            session.add(
                JobClaim(
                    job=job,
                    scheduled_at=tick,
                    claimed_by=replica,
                    claimed_at=now,
                    lease_until=lease,
                )
            )
        return True
    except IntegrityError:
        pass
    result = await session.execute(
        sa.update(JobClaim)
        .where(
            JobClaim.job == job,
            JobClaim.scheduled_at == tick,
            JobClaim.finished_at.is_(None),
            JobClaim.lease_until < now,
        )
        .values(claimed_by=replica, claimed_at=now, lease_until=lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession, job: str, tick: datetime, replica: str, now: datetime, error: str | None
) -> bool:
    """Mark the tick done, only if it is still ours: False means another replica took it over."""
    result = await session.execute(
        sa.update(JobClaim)
        .where(
            JobClaim.job == job,
            JobClaim.scheduled_at == tick,
            JobClaim.claimed_by == replica,
            JobClaim.finished_at.is_(None),
        )
        .values(finished_at=now, error=error)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def prune(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(sa.delete(JobClaim).where(JobClaim.scheduled_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
