"""Which nodes hold a command stream (Connect or SubscribeUpdates) right now.

Held locally per process; with Redis configured each held stream is also a key with a short
expiry, refreshed while it lives, so every replica knows a node is reachable by stream and
does not also hand its commands out in heartbeat responses. While Redis does not answer, other
replicas' streams are unknown (their nodes get commands in heartbeat responses instead); once
it answers again, the streams held here are published anew and the keys of streams that ended
meanwhile are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from opscaffold.manager.redis import REDIS_ERRORS, RedisLink

PRESENCE_TTL_S = 60
REFRESH_S = 20
BATCH = 1000


class StreamRegistry:
    def __init__(self, link: RedisLink | None, replica: str) -> None:
        self._link = link
        self._replica = replica
        self._held: Counter[int] = Counter()
        self._ended_unseen: set[int] = set()  # ended while Redis did not answer
        self._ending: set[int] = set()  # ended, their presence being removed
        self._refresher: asyncio.Task[None] | None = None
        if link is not None:
            link.on_recovery(self._republish)

    @staticmethod
    def _key(node_id: int) -> str:
        return f"ops:stream:{node_id}"

    async def open(self, node_id: int) -> None:
        self._held[node_id] += 1
        self._ended_unseen.discard(node_id)
        await self._write(lambda r: r.set(self._key(node_id), self._replica, ex=PRESENCE_TTL_S))

    async def close(self, node_id: int) -> None:
        self._held[node_id] -= 1
        if self._held[node_id] <= 0:
            del self._held[node_id]
            self._ending.add(node_id)  # a stop() meanwhile removes it too
            try:
                if not await self._write(lambda r: r.delete(self._key(node_id))):
                    self._ended_unseen.add(node_id)
            finally:
                self._ending.discard(node_id)

    async def _write(self, op: Callable[[Redis], Awaitable[object]]) -> bool:
        """Run one Redis write; False when Redis is absent or does not answer."""
        link = self._link
        if link is None or not link.usable:
            return link is None
        try:
            await op(link.client)
        except REDIS_ERRORS as error:
            link.failed(error)
            return False
        return True

    def held_here(self, node_id: int) -> bool:
        return self._held[node_id] > 0  # a Counter answers 0 for a node it has not seen

    def count(self) -> int:
        return len(self._held)

    async def held_anywhere(self, node_id: int) -> bool:
        if self.held_here(node_id):
            return True
        link = self._link
        if link is None or not link.usable:
            return False
        try:
            return bool(await link.client.exists(self._key(node_id)))
        except REDIS_ERRORS as error:
            link.failed(error)
            return False

    def start(self) -> None:
        if self._link is not None:
            self._refresher = asyncio.create_task(self._refresh(), name="stream-presence")

    async def stop(self) -> None:
        """Stop refreshing and remove the presence of every stream still counted here (or
        still being closed: a stream cut at shutdown may not finish removing its own)."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        node_ids = list(set(self._held) | self._ending)
        self._held.clear()
        if node_ids and not await self._write(lambda redis: _delete(redis, node_ids)):
            self._ended_unseen.update(node_ids)

    async def _refresh(self) -> None:
        assert self._link is not None
        while True:
            await asyncio.sleep(REFRESH_S)
            if not self._link.usable:
                continue
            try:
                await self._publish(self._link.client)
            except REDIS_ERRORS as error:
                self._link.failed(error)

    async def _publish(self, redis: Redis) -> None:
        node_ids = list(self._held)
        for start in range(0, len(node_ids), BATCH):
            async with redis.pipeline(transaction=False) as pipe:
                for node_id in node_ids[start : start + BATCH]:
                    pipe.set(self._key(node_id), self._replica, ex=PRESENCE_TTL_S)
                await pipe.execute()

    async def _republish(self, redis: Redis) -> None:
        await _delete(redis, list(self._ended_unseen - set(self._held)))
        self._ended_unseen.clear()
        await self._publish(redis)


async def _delete(redis: Redis, node_ids: list[int]) -> None:
    for start in range(0, len(node_ids), BATCH):
        await redis.delete(*(StreamRegistry._key(n) for n in node_ids[start : start + BATCH]))
