"""Wake-ups for readers of a running execution's output, across replicas.

The parts in the database are the truth; a wake-up only saves a reader its next look. A part
is stored by whichever replica holds the node's stream, and its reader may be on another: so
each store is published on Redis, and every replica wakes its own readers of that execution.
Without Redis (or while it does not answer) readers on this replica are woken at once and the
others find the part on their next look (`task.output_poll_interval`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator

from opscaffold.manager.logging import get_logger
from opscaffold.manager.redis import REDIS_ERRORS, RedisLink

CHANNEL = "ops:task-output"
log = get_logger("opscaffold.task")


def _key(execution_id: str, node_id: int) -> str:
    return f"{execution_id}:{node_id}"


class OutputBus:
    def __init__(self, link: RedisLink | None = None) -> None:
        self._link = link
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None

    @property
    def readers(self) -> int:
        """Readers waiting on this replica."""
        return sum(len(waiters) for waiters in self._waiters.values())

    @contextlib.contextmanager
    def watch(self, execution_id: str, node_id: int) -> Iterator[asyncio.Event]:
        """An event set whenever new output of the execution on the node is stored."""
        key = _key(execution_id, node_id)
        event = asyncio.Event()
        self._waiters[key].add(event)
        self._listen_if_needed()
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    async def publish(self, execution_id: str, node_id: int) -> None:
        """New output (or the end) of the execution on the node is committed."""
        key = _key(execution_id, node_id)
        self._wake(key)
        if self._link is not None and self._link.usable:
            try:
                await self._link.client.publish(CHANNEL, key)
            except REDIS_ERRORS as error:
                self._link.failed(error)

    def _wake(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    def _listen_if_needed(self) -> None:
        """Subscribe once the first reader comes (most replicas never have one)."""
        if self._link is not None and (self._listener is None or self._listener.done()):
            self._listener = asyncio.create_task(self._listen(self._link), name="output-bus")

    async def _listen(self, link: RedisLink) -> None:
        """Subscribe, and subscribe again whenever Redis comes back after an outage."""
        while True:
            await link.wait_usable()
            pubsub = link.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        self._wake(data.decode() if isinstance(data, bytes) else str(data))
            except REDIS_ERRORS as error:
                link.failed(error)
            except Exception:
                log.exception("task output listener failed")
                link.failed(RuntimeError("task output listener failed"))
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
