"""Fixed-window counters for rate limiting and login throttling.

In process when Redis is absent (one replica), in Redis when configured so every replica sees
the same counts. While a configured Redis does not answer, each replica counts on its own:
limits then hold per replica instead of across them, and nothing is refused for the outage.
A window is identified by its start, so counters expire on their own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from opscaffold.manager.redis import REDIS_ERRORS, RedisLink


@dataclass(frozen=True, slots=True)
class WindowCount:
    count: int
    retry_after: int  # seconds until the current window ends


class CounterStore(Protocol):
    async def incr(self, key: str, window_s: int) -> WindowCount: ...
    async def peek(self, key: str, window_s: int) -> WindowCount: ...
    async def reset(self, key: str, window_s: int) -> None: ...


def _window(window_s: int, now: float) -> tuple[int, int]:
    start = int(now // window_s) * window_s
    return start, max(1, math.ceil(start + window_s - now))


class MemoryCounters:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window start, count)
        self._max_keys = max_keys

    async def incr(self, key: str, window_s: int) -> WindowCount:
        start, retry_after = _window(window_s, time.time())
        held = self._counts.get(key)
        count = held[1] + 1 if held and held[0] == start else 1
        if len(self._counts) >= self._max_keys and key not in self._counts:
            self._evict(start)
        self._counts[key] = (start, count)
        return WindowCount(count, retry_after)

    async def peek(self, key: str, window_s: int) -> WindowCount:
        start, retry_after = _window(window_s, time.time())
        held = self._counts.get(key)
        return WindowCount(held[1] if held and held[0] == start else 0, retry_after)

    async def reset(self, key: str, window_s: int) -> None:
        self._counts.pop(key, None)

    def clear(self) -> None:
        """Forget every count."""
        self._counts.clear()

    def _evict(self, current_start: int) -> None:
        # A flood of distinct keys (spoofed sources) must not grow memory without bound.
        stale = [k for k, (start, _) in self._counts.items() if start != current_start]
        for k in stale or list(self._counts)[: len(self._counts) // 2]:
            del self._counts[k]


class RedisCounters:
    def __init__(self, link: RedisLink, prefix: str = "ops:cnt:") -> None:
        self._link = link
        self._prefix = prefix
        self._local = MemoryCounters()  # while Redis does not answer

    def _key(self, key: str, start: int) -> str:
        return f"{self._prefix}{key}:{start}"

    async def incr(self, key: str, window_s: int) -> WindowCount:
        if self._link.usable:
            start, retry_after = _window(window_s, time.time())
            rkey = self._key(key, start)
            try:
                async with self._link.client.pipeline(transaction=True) as pipe:
                    pipe.incr(rkey)
                    pipe.expire(rkey, window_s + 1)
                    count, _ = await pipe.execute()
                return WindowCount(int(count), retry_after)
            except REDIS_ERRORS as error:
                self._link.failed(error)
        return await self._local.incr(key, window_s)

    async def peek(self, key: str, window_s: int) -> WindowCount:
        if self._link.usable:
            start, retry_after = _window(window_s, time.time())
            try:
                value = await self._link.client.get(self._key(key, start))
                return WindowCount(int(value or 0), retry_after)
            except REDIS_ERRORS as error:
                self._link.failed(error)
        return await self._local.peek(key, window_s)

    async def reset(self, key: str, window_s: int) -> None:
        await self._local.reset(key, window_s)
        if self._link.usable:
            start, _ = _window(window_s, time.time())
            try:
                await self._link.client.delete(self._key(key, start))
            except REDIS_ERRORS as error:
                self._link.failed(error)
