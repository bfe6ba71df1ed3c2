"""Lease-based job runner: each job's tick is claimed in the database by exactly one replica.

A tick is the job's interval-aligned time. Claiming inserts the row (job, tick); the work and
the mark of completion share one transaction, and the mark only succeeds while the claim is
still ours, so a replica that paused past its lease cannot commit work on a tick another has
taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings
from opscaffold.manager.db import create_engine, session_factory, transaction
from opscaffold.manager.jobs import repository
from opscaffold.manager.jobs.registry import Job, lend_bus
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger

log = get_logger("opscaffold.jobs")


class StolenTick(Exception):
    """Our claim was taken over while we worked: the work rolls back."""


def tick_of(now: datetime, every: timedelta) -> datetime:
    step = max(int(every.total_seconds()), 1)
    epoch = datetime(1970, 1, 1)
    return epoch + timedelta(seconds=int((now - epoch).total_seconds()) // step * step)


class JobRunner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        jobs: dict[str, Job],
        replica: str,
        bus: CommandBus | None = None,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._settings = settings
        self._jobs = jobs
        self._replica = replica
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(j), name=f"job:{j.name}") for j in self._jobs.values()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, job: Job) -> None:
        every = job.every(self._settings)
        while True:
            tick = tick_of(utcnow(), every)
            try:
                await self.run_once(job, tick)
            except Exception:
                log.exception("job failed", job=job.name, tick=tick.isoformat())
            next_tick = tick + every
            await asyncio.sleep(max((next_tick - utcnow()).total_seconds(), 0.05))

    async def run_once(self, job: Job, tick: datetime) -> bool:
        """Claim and run one tick; False when another replica has it."""
        lease = job.every(self._settings) * 2 + timedelta(seconds=30)
        now = utcnow()
        async with transaction(self._sessions) as session:
            if not await repository.claim(session, job.name, tick, self._replica, now, now + lease):
                return False
        try:
            async with transaction(self._sessions) as session:
                if self._bus is not None:
                    lend_bus(session, self._bus)
                await job.run(session, self._settings, utcnow())
                if not await repository.finish(
                    session, job.name, tick, self._replica, utcnow(), None
                ):
                    raise StolenTick(job.name)
        except StolenTick:
            log.warning("job tick taken over by another replica", job=job.name)
            return False
        return True


async def run_now(settings: Settings, job: Job, replica: str) -> bool:
    """Run one job at once, outside its schedule (`ops-manager run-job`). The run is claimed
    as a tick of its own, so it is fenced like any other; False when that tick was taken."""
    engine = create_engine(settings.database)
    try:
        runner = JobRunner(session_factory(engine), settings, {job.name: job}, replica)
        return await runner.run_once(job, utcnow())
    finally:
        await engine.dispose()
