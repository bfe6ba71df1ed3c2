"""Which nodes may have commands waiting, and wake-ups for the streams that carry them.

The outbox in the database is the truth. This index only lets the hot paths skip it: a
heartbeat looks for commands only when its node may have some, and a stream queries when
woken. New commands wake their nodes' streams after commit; with Redis configured the wake-up
crosses replicas. A periodic refresh from the outbox catches anything a wake-up missed, so a
lost message only delays a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis

from opscaffold.manager.logging import get_logger

CHANNEL = "ops:commands"
REFRESH_S = 30.0
log = get_logger("opscaffold.command")
PendingLoader = Callable[[], Awaitable[Iterable[int]]]


class CommandBus:
    def __init__(self, redis: Redis | None = None) -> None:
        self._redis = redis
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._pending: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, node_id: int) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[node_id].add(event)
        return event

    def unsubscribe(self, node_id: int, event: asyncio.Event) -> None:
        waiters = self._waiters.get(node_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[node_id]

    def may_have(self, node_id: int) -> bool:
        return node_id in self._pending

    def settled(self, node_id: int) -> None:
        """Everything pending for this node has been handed out."""
        self._pending.discard(node_id)

    async def notify(self, node_ids: Iterable[int]) -> None:
        ids = list(node_ids)
        if self._redis is not None:
            await self._redis.publish(CHANNEL, json.dumps(ids))
        else:
            self._wake(ids)

    def _wake(self, node_ids: Iterable[int]) -> None:
        for node_id in node_ids:
            self._pending.add(node_id)
            for event in self._waiters.get(node_id, ()):
                event.set()

    async def start(self, load_pending: PendingLoader) -> None:
        self._wake(await load_pending())
        self._tasks.append(asyncio.create_task(self._refresh(load_pending), name="command-refresh"))
        if self._redis is not None:
            pubsub = self._redis.pubsub()
            await pubsub.subscribe(CHANNEL)
            self._tasks.append(asyncio.create_task(self._listen(pubsub), name="command-bus"))

    async def _refresh(self, load_pending: PendingLoader) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                self._wake(await load_pending())
            except Exception:
                log.exception("could not refresh pending commands")

    async def _listen(self, pubsub: object) -> None:
        async for message in pubsub.listen():  # type: ignore[attr-defined]
            if message.get("type") == "message":
                with contextlib.suppress(ValueError, TypeError):
                    self._wake(int(i) for i in json.loads(message["data"]))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
