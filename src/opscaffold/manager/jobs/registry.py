"""Background jobs, declared next to their domain with `@job(name, every=...)`.

The decorator only describes a job; nothing is registered on import. The app names the
modules whose jobs it runs (`app.JOB_MODULES`) and `collect` gathers them, so this module
never imports the domains that import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings

JobFn = Callable[[AsyncSession, Settings, datetime], Awaitable[None]]
_BUS = "command_bus"


def lend_bus(session: AsyncSession, bus: CommandBus) -> None:
    """The runner lends its replica's command bus to the job running in this session."""
    session.info[_BUS] = bus


def command_bus(session: AsyncSession) -> CommandBus:
    """The bus that wakes the daemons' streams once the job's commands are committed; without
    one (a job run from the command line) the streams find them on their next outbox read."""
    bus = session.info.get(_BUS)
    return bus if isinstance(bus, CommandBus) else CommandBus()


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # "<domain>.<verb>"
    every: Callable[[Settings], timedelta]
    run: JobFn

    async def __call__(self, session: AsyncSession, settings: Settings, now: datetime) -> None:
        await self.run(session, settings, now)


def job(name: str, *, every: Callable[[Settings], timedelta]) -> Callable[[JobFn], Job]:
    """Declare a job. It runs once per tick across all replicas, in one transaction."""

    def declare(fn: JobFn) -> Job:
        return Job(name, every, fn)

    return declare


def collect(modules: Iterable[ModuleType]) -> dict[str, Job]:
    """The jobs the given modules declare, by name; a name declared twice is a mistake."""
    jobs: dict[str, Job] = {}
    for module in modules:
        for value in vars(module).values():
            if not isinstance(value, Job):
                continue
            if jobs.get(value.name, value) is not value:
                raise ValueError(f"job {value.name} is declared twice")
            jobs[value.name] = value
    return jobs
