"""The Manager's Redis: a cache and a bus between replicas, never required to serve.

Whoever uses Redis asks `usable` first and reports a failure with `failed`; while Redis does
not answer, callers fall back to the process or the database instead of waiting on it. A
watcher pings Redis until it answers again, then runs what must be redone after an outage
(resubscribe, republish stream presence, drop caches that may have missed an invalidation)
before Redis is used again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from opscaffold.manager.config import RedisSettings
from opscaffold.manager.logging import get_logger

# What a failing Redis raises: redis-py wraps most socket errors, not all of them.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
POOL_WAIT_S = 5.0
SOCKET_TIMEOUT_S = 5.0
RETRY_S = 1.0
PING_TIMEOUT_S = 2.0
log = get_logger("opscaffold.redis")
Recovery = Callable[[Redis], Awaitable[object]]


def connect(cfg: RedisSettings) -> Redis:
    """A client that connects on first use: building it never waits for Redis."""
    # Blocking: when every connection is busy (thousands of streams opening after a restart),
    # a caller waits for one instead of failing at once.
    pool = BlockingConnectionPool(
        host=cfg.host,
        port=cfg.port,
        db=cfg.db,
        password=cfg.password.get_secret_value() or None,
        max_connections=cfg.pool_size,
        timeout=POOL_WAIT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        socket_keepalive=True,  # a subscription notices a peer that vanished
    )
    return Redis.from_pool(pool)


class RedisLink:
    """A Redis client and whether it answers right now."""

    def __init__(self, client: Redis, *, retry_s: float = RETRY_S) -> None:
        self.client = client
        self.reason: str | None = None  # why Redis is not used, while it is not
        self.epoch = 0  # counts recoveries: a value read before one may be stale after it
        self._retry_s = retry_s
        self._recovery: list[Recovery] = []
        self._up = asyncio.Event()
        self._up.set()  # optimistic: the first failure says otherwise
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def usable(self) -> bool:
        return self._up.is_set()

    def on_recovery(self, callback: Recovery) -> None:
        """Run `callback` after an outage, before Redis is used again."""
        self._recovery.append(callback)

    def failed(self, error: BaseException) -> None:
        """Stop using Redis until the watcher sees it answer again."""
        reason = f"{type(error).__name__}: {error}"[:200]
        if self._up.is_set():
            log.warning("redis unavailable; serving without it", error=reason)
        self.reason = reason
        self._up.clear()
        if self._closed:  # shutting down: nothing will use Redis again
            return
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="redis-watch")

    async def wait_usable(self) -> None:
        await self._up.wait()

    async def _watch(self) -> None:
        while not self._up.is_set():
            await asyncio.sleep(self._retry_s)
            try:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    await self.client.ping()
                for callback in self._recovery:
                    await callback(self.client)
            except REDIS_ERRORS as error:
                self.reason = f"{type(error).__name__}: {error}"[:200]
                continue
            except Exception:  # a broken callback must not leave Redis unused forever
                log.exception("redis recovery step failed")
            self.epoch += 1
            self.reason = None
            self._up.set()
            log.warning("redis is back; using it again")

    async def close(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.aclose()
