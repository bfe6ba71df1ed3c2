"""Background jobs, declared next to their domain with `@job(name, every=...)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.config import Settings

JobFn = Callable[[AsyncSession, Settings, datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # "<domain>.<verb>"
    every: Callable[[Settings], timedelta]
    run: JobFn


JOBS: dict[str, Job] = {}


def job(name: str, *, every: Callable[[Settings], timedelta]) -> Callable[[JobFn], JobFn]:
    """Register a job. It runs once per tick across all replicas, in one transaction."""

    def register(fn: JobFn) -> JobFn:
        if name in JOBS:
            raise ValueError(f"job {name} is registered twice")
        JOBS[name] = Job(name, every, fn)
        return fn

    return register


def load_all() -> dict[str, Job]:
    """Import the modules that declare jobs, so their decorators have run."""
    from opscaffold.manager.command import jobs as _command_jobs  # noqa: F401
    from opscaffold.manager.ingest import jobs as _ingest_jobs  # noqa: F401
    from opscaffold.manager.jobs import maintenance as _maintenance  # noqa: F401
    from opscaffold.manager.metric import jobs as _metric_jobs  # noqa: F401

    return JOBS
