"""Which nodes may have commands waiting, and wake-ups for the streams that carry them.

The outbox in the database is the truth. This index only lets the hot paths skip it: a
heartbeat looks for commands only when its node may have some, and a stream queries when
woken. New commands wake their nodes' streams after commit; with Redis configured the wake-up
crosses replicas. A periodic refresh from the outbox catches anything a wake-up missed, so a
lost message only delays a command. While Redis does not answer, wake-ups stay in the process
and the outbox is read every few seconds instead, so commands still reach streams held by other
replicas; once Redis answers again the bus subscribes anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from opscaffold.manager.logging import get_logger
from opscaffold.manager.redis import REDIS_ERRORS, RedisLink

CHANNEL = "ops:commands"
REFRESH_S = 30.0
REFRESH_WITHOUT_REDIS_S = 2.0  # no wake-ups cross replicas: read the outbox often
log = get_logger("opscaffold.command")
PendingLoader = Callable[[], Awaitable[Iterable[int]]]


class CommandBus:
    def __init__(self, link: RedisLink | None = None) -> None:
        self._link = link
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._pending: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None

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

    def wake_all(self) -> None:
        """Wake every stream (e.g. to notice the Manager is stopping)."""
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def may_have(self, node_id: int) -> bool:
        return node_id in self._pending

    def settled(self, node_id: int) -> None:
        """Everything pending for this node has been handed out."""
        self._pending.discard(node_id)

    async def notify(self, node_ids: Iterable[int]) -> None:
        ids = list(node_ids)
        if self._link is not None and self._link.usable:
            try:
                await self._link.client.publish(CHANNEL, json.dumps(ids))
                return
            except REDIS_ERRORS as error:
                self._link.failed(error)
        self._wake(ids)  # other replicas find these in the outbox on their next refresh

    def _wake(self, node_ids: Iterable[int]) -> None:
        for node_id in node_ids:
            self._pending.add(node_id)
            for event in self._waiters.get(node_id, ()):
                event.set()

    async def start(self, load_pending: PendingLoader) -> None:
        self._wake(await load_pending())
        self._tasks.append(asyncio.create_task(self._refresh(load_pending), name="command-refresh"))
        if self._link is not None:
            link = self._link
            self._start_listener(link, load_pending)

            async def resubscribe(_: object) -> None:
                # The old subscription may sit on a connection that died without a word.
                if self._listener is not None:  # not stopped
                    self._start_listener(link, load_pending)

            link.on_recovery(resubscribe)

    def _start_listener(self, link: RedisLink, load_pending: PendingLoader) -> None:
        if self._listener is not None:
            self._listener.cancel()
        self._listener = asyncio.create_task(self._listen(link, load_pending), name="command-bus")

    def _refresh_interval(self) -> float:
        if self._link is None or self._link.usable:
            return REFRESH_S
        return REFRESH_WITHOUT_REDIS_S

    async def _refresh(self, load_pending: PendingLoader) -> None:
        waited = 0.0
        while True:
            # Short steps, so an outage of Redis shortens the wait at once.
            await asyncio.sleep(REFRESH_WITHOUT_REDIS_S)
            waited += REFRESH_WITHOUT_REDIS_S
            if waited < self._refresh_interval():
                continue
            waited = 0.0
            await self._catch_up(load_pending)

    async def _catch_up(self, load_pending: PendingLoader) -> None:
        try:
            self._wake(await load_pending())
        except Exception:
            log.exception("could not refresh pending commands")

    async def _listen(self, link: RedisLink, load_pending: PendingLoader) -> None:
        """Subscribe, and subscribe again whenever Redis comes back after an outage."""
        while True:
            await link.wait_usable()
            pubsub = link.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self._catch_up(load_pending)  # wake-ups published while away are lost
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        with contextlib.suppress(ValueError, TypeError):
                            self._wake(int(i) for i in json.loads(message["data"]))
            except REDIS_ERRORS as error:
                link.failed(error)
            except Exception:
                log.exception("command bus listener failed")
                link.failed(RuntimeError("command bus listener failed"))
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._listener is not None:
            self._tasks.append(self._listener)
            self._listener = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
