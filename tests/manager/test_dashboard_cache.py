"""The dashboard's figures are computed once per max_age, refreshed behind a request while
a little stale, and waited for when old."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from opscaffold.manager.dashboard.cache import STALE_FOR, DashboardCache
from tests.manager import factories as f
from tests.manager.conftest import Stack

MAX_AGE = timedelta(seconds=10)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_figures_are_reused_then_refreshed_behind_the_request_then_waited_for(
    stack: Stack,
) -> None:
    clock = Clock()
    cache = DashboardCache(stack.runtime.sessions, MAX_AGE, clock)
    first = await cache.get()
    await f.add_node(stack, "new-node")

    with f.counting_statements(stack) as statements:
        clock.now += 9
        assert await cache.get() is first  # young enough: no query at all
    assert statements == []

    clock.now += 2  # older than max_age, not yet stale
    assert await cache.get() is first  # answered at once ...
    refreshed = await cache._refreshing  # type: ignore[misc]  # ... while one refresh runs
    assert refreshed.total_nodes == first.total_nodes + 1
    assert await cache.get() is refreshed

    await f.add_node(stack, "another-node")
    clock.now += STALE_FOR * MAX_AGE.total_seconds()  # nobody asked for a long while
    waited = await cache.get()
    assert waited.total_nodes == refreshed.total_nodes + 1


async def test_concurrent_requests_compute_once(stack: Stack) -> None:
    cache = DashboardCache(stack.runtime.sessions, MAX_AGE, Clock())
    with f.counting_statements(stack) as statements:
        answers = await asyncio.gather(*(cache.get() for _ in range(5)))
    assert all(answer is answers[0] for answer in answers)
    assert sum("FROM nodes" in s for s in statements) == 1
