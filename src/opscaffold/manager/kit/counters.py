"""Fixed-window counters for rate limiting and login throttling.

In process when Redis is absent (one replica), in Redis when configured so every replica sees
the same counts. A window is identified by its start, so counters expire on their own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


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

    def _evict(self, current_start: int) -> None:
        # A flood of distinct keys (spoofed sources) must not grow memory without bound.
        stale = [k for k, (start, _) in self._counts.items() if start != current_start]
        for k in stale or list(self._counts)[: len(self._counts) // 2]:
            del self._counts[k]


class RedisCounters:
    def __init__(self, redis: Redis, prefix: str = "ops:cnt:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, key: str, start: int) -> str:
        return f"{self._prefix}{key}:{start}"

    async def incr(self, key: str, window_s: int) -> WindowCount:
        start, retry_after = _window(window_s, time.time())
        rkey = self._key(key, start)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(rkey)
            pipe.expire(rkey, window_s + 1)
            count, _ = await pipe.execute()
        return WindowCount(int(count), retry_after)

    async def peek(self, key: str, window_s: int) -> WindowCount:
        start, retry_after = _window(window_s, time.time())
        value = await self._redis.get(self._key(key, start))
        return WindowCount(int(value or 0), retry_after)

    async def reset(self, key: str, window_s: int) -> None:
        start, _ = _window(window_s, time.time())
        await self._redis.delete(self._key(key, start))
