"""Which nodes hold a command stream (Connect or SubscribeUpdates) right now.

Held locally per process; with Redis configured each held stream is also a key with a short
expiry, refreshed while it lives, so every replica knows a node is reachable by stream and
does not also hand its commands out in heartbeat responses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from redis.asyncio import Redis

PRESENCE_TTL_S = 60
REFRESH_S = 20


class StreamRegistry:
    def __init__(self, redis: Redis | None, replica: str) -> None:
        self._redis = redis
        self._replica = replica
        self._held: Counter[int] = Counter()
        self._refresher: asyncio.Task[None] | None = None

    @staticmethod
    def _key(node_id: int) -> str:
        return f"ops:stream:{node_id}"

    async def open(self, node_id: int) -> None:
        self._held[node_id] += 1
        if self._redis is not None:
            await self._redis.set(self._key(node_id), self._replica, ex=PRESENCE_TTL_S)

    async def close(self, node_id: int) -> None:
        self._held[node_id] -= 1
        if self._held[node_id] <= 0:
            del self._held[node_id]
            if self._redis is not None:
                await self._redis.delete(self._key(node_id))

    def held_here(self, node_id: int) -> bool:
        return self._held[node_id] > 0  # a Counter answers 0 for a node it has not seen

    def count(self) -> int:
        return len(self._held)

    async def held_anywhere(self, node_id: int) -> bool:
        if self.held_here(node_id):
            return True
        if self._redis is None:
            return False
        return bool(await self._redis.exists(self._key(node_id)))

    def start(self) -> None:
        if self._redis is not None:
            self._refresher = asyncio.create_task(self._refresh(), name="stream-presence")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    async def _refresh(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(REFRESH_S)
            node_ids = list(self._held)
            for start in range(0, len(node_ids), 1000):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for node_id in node_ids[start : start + 1000]:
                        pipe.set(self._key(node_id), self._replica, ex=PRESENCE_TTL_S)
                    await pipe.execute()
