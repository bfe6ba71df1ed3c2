"""Moving rollouts forward, wave by wave: the work of the `rollout.advance` job.

Everything a rollout is lives in its row and its records, and every change is a guarded
UPDATE, so any replica may run a tick, a crash loses nothing, and a wave's orders are written
to the outbox in the same transaction that moves the rollout to that wave: a wave is never
sent twice nor skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.models import Rollout
from opscaffold.manager.models.release import ACTIVE_ROLLOUT_STATUSES
from opscaffold.manager.rollout import plan, repository
from opscaffold.manager.version import service as version_service

EXPIRED = "node offline until the rollout expired"


async def advance_all(
    session: AsyncSession,
    bus: CommandBus,
    base_url: str,
    now: datetime,
    stuck_after: timedelta,
) -> None:
    """One pass over every running rollout."""
    await repository.fail_stuck(session, now - stuck_after, now)
    await repository.fail_pending(
        session,
        sa.and_(Rollout.status.in_(ACTIVE_ROLLOUT_STATUSES), Rollout.expires_at <= now),
        EXPIRED,
        now,
        current_wave_only=True,
    )
    await repository.fail_expired_orders(session, EXPIRED, now)
    for rollout in await repository.running_rollouts(session):
        await advance(session, bus, rollout, base_url, now)


async def advance(
    session: AsyncSession, bus: CommandBus, rollout: Rollout, base_url: str, now: datetime
) -> None:
    wave = rollout.current_wave
    if await repository.unfinished_in_wave(session, rollout.batch_id, wave):
        return  # the wave is still under way
    failed = await repository.failures(session, rollout.batch_id)
    if failed - rollout.accepted_failures > rollout.max_failures:
        await _stop(session, rollout, "paused", _too_many(rollout, failed), now)
        return
    if wave >= rollout.total_waves:
        await _stop(session, rollout, "completed", None, now)
        return
    if not await _baked(session, rollout, now):
        return
    expires_at = now + timedelta(seconds=rollout.wait_seconds)
    if await repository.start_wave(session, rollout.batch_id, wave, wave + 1, now, expires_at):
        version = await version_service.get(session, rollout.version_id)
        await plan.send_wave(session, bus, rollout, version, wave + 1, base_url, now, expires_at)


async def _baked(session: AsyncSession, rollout: Rollout, now: datetime) -> bool:
    """After a canary wave: its nodes must stay healthy for bake_seconds first. An unhealthy
    canary pauses the rollout (resuming in that wave is the operator's judgement and skips
    the check)."""
    if rollout.strategy != "canary" or rollout.current_wave != 1 or rollout.bake_seconds == 0:
        return True
    if rollout.resumed_wave == rollout.current_wave:
        return True
    # The watch begins on the first tick that finds the wave done: from then on the canary
    # nodes must stay online, and their agents must report running (a report made while an
    # agent restarted for its own update is older, and says nothing of the new one).
    watch_began = rollout.wave_done_at or now
    agent = rollout.component == "agent"
    sick = await repository.unhealthy_in_wave(
        session, rollout.batch_id, 1, agent, reported_after=watch_began
    )
    if sick:
        what = "offline or stopped running the agent" if agent else "offline"
        reason = f"{sick} canary node(s) went {what} after updating"
        await _stop(session, rollout, "paused", reason, now)
        return False
    if rollout.wave_done_at is None:
        await repository.move_rollout(
            session, rollout.batch_id, ("running",), {"wave_done_at": now, "updated_at": now}
        )
        return False
    return now >= rollout.wave_done_at + timedelta(seconds=rollout.bake_seconds)


def _too_many(rollout: Rollout, failed: int) -> str:
    allowed = rollout.max_failures + rollout.accepted_failures
    return f"{failed} node(s) failed to update, more than the {allowed} allowed"


async def _stop(
    session: AsyncSession, rollout: Rollout, status: str, reason: str | None, now: datetime
) -> bool:
    values: dict[str, object] = {"status": status, "reason": reason, "updated_at": now}
    if status != "paused":
        values["finished_at"] = now
    return await repository.move_rollout(session, rollout.batch_id, ("running",), values)
