"""The dashboard, computed at most once per `dashboard.max_age` in each Manager process.

Its figures are fleet-wide aggregates (a pass over every node and agent), and every open
console asks for them every 30 s: a request is answered from the last result while it is
younger than max_age; a little older, it is still answered at once while one refresh runs in
the background; older still (nobody asked for a while), the request waits for fresh figures.
Concurrent requests never compute twice. `generated_at` tells how old the figures are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.dashboard import service
from opscaffold.manager.dashboard.schemas import Dashboard
from opscaffold.manager.logging import get_logger

STALE_FOR = 3  # up to this many max_ages old, figures are served while they refresh
log = get_logger("opscaffold.dashboard")


class DashboardCache:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        max_age: timedelta,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._max_age = max_age.total_seconds()
        self._clock = clock
        self._value: Dashboard | None = None
        self._computed_at = 0.0
        self._refreshing: asyncio.Task[Dashboard] | None = None

    async def get(self) -> Dashboard:
        age = self._clock() - self._computed_at
        if self._value is not None and age < self._max_age:
            return self._value
        if self._value is not None and age < STALE_FOR * self._max_age:
            self._refresh()
            return self._value
        return await asyncio.shield(self._refresh())

    def _refresh(self) -> asyncio.Task[Dashboard]:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._compute())
            self._refreshing.add_done_callback(_log_failure)
        return self._refreshing

    async def _compute(self) -> Dashboard:
        started = self._clock()
        async with self._sessions() as session:
            value = await service.dashboard(session)
        self._value, self._computed_at = value, started
        return value


def _log_failure(task: asyncio.Task[Dashboard]) -> None:
    # A refresh nobody waits for must still say why it failed (the next request retries).
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("dashboard refresh failed", error=f"{type(exc).__name__}: {exc}")
