"""Group commit: many callers queue items, one task handles them in batches.

A batch is taken when it is full or `max_delay` after its first item, so a lone item waits
at most that long while a storm is handled in few, large transactions. The queue is bounded:
beyond it `offer` says no at once and the caller tells its client to retry, because a queue
longer than what is handled before the clients' deadlines only feeds a storm.

A batch that fails is split (`isolate`), so one item the database refuses fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy.exc

from opscaffold.manager.db import is_unavailable
from opscaffold.manager.errors import (
    DatabaseError,
    DomainError,
    IngestBusy,
    InternalError,
    InvalidArgument,
)
from opscaffold.manager.logging import get_logger

T = TypeVar("T")
log = get_logger("opscaffold.batching")


async def isolate(
    items: list[T],
    commit: Callable[[list[T]], Awaitable[None]],
    fail: Callable[[list[T], Exception, bool], None],
) -> None:
    """Commit `items` together; when that fails for a reason one of them may have caused,
    commit each half on its own, and so on down to the items that cannot be committed.

    One bad item among n costs about 2·log2(n) more transactions, and only its caller is
    failed. `fail(items, error, refused)` answers the callers of what was not committed:
    `refused` is True for an item that failed alone while others of its batch were committed
    (the database refuses that item: retrying cannot help), False otherwise (an outage, a
    batch of one, or splitting gave up: the callers may retry)."""
    splitting = _Splitting(commit, budget=4 * len(items).bit_length() + 4)
    await splitting.run(items)
    for failed, error in splitting.failures:
        fail(failed, error, splitting.committed_any and len(failed) == 1)


class Waiting(Protocol):
    """A queued item whose caller waits on `done`."""

    @property
    def done(self) -> asyncio.Future[Any]: ...


def answer_failure(
    waiting: Sequence[Waiting],
    error: Exception,
    refused: bool,
    *,
    what: str,
    races: tuple[type[Exception], ...] = (),
    busy: str | None = None,
) -> None:
    """Answer every caller of items that could not be committed (the `fail` of `isolate`).

    A refused item (it failed alone while others of its batch were committed) is one the
    database will never take: InvalidArgument. Otherwise the callers may retry: IngestBusy
    with the `busy` message when given, else DatabaseError for a database error or a lost
    race (`races`), and InternalError for a bug, which is logged with its traceback."""
    database = isinstance(error, (sqlalchemy.exc.SQLAlchemyError, *races))
    if database:
        log.warning(f"{what} batch failed", size=len(waiting), error=type(error).__name__)
    else:
        log.error(f"{what} batch failed", size=len(waiting), exc_info=error)

    def answer() -> DomainError:  # one each: an exception raised in several tasks gets tangled
        if refused:
            return InvalidArgument(f"the Manager cannot store this {what}")
        if busy is not None:
            return IngestBusy(busy)
        return DatabaseError("database busy; retry") if database else InternalError()

    for item in waiting:
        if not item.done.done():
            item.done.set_exception(answer())


class _Splitting(Generic[T]):
    def __init__(self, commit: Callable[[list[T]], Awaitable[None]], *, budget: int) -> None:
        self.commit = commit
        self.budget = budget  # transactions left: several bad items, or an outage nobody
        self.committed_any = False  # recognised, must not cost one transaction per item
        self.failures: list[tuple[list[T], Exception]] = []

    async def run(self, items: list[T]) -> None:
        self.budget -= 1
        try:
            await self.commit(items)
        except Exception as error:
            if len(items) == 1 or is_unavailable(error) or self.budget < 2:
                self.failures.append((items, error))
                return
            log.warning(
                "batch failed; committing its parts apart",
                size=len(items),
                error=type(error).__name__,
            )
            half = len(items) // 2
            await self.run(items[:half])
            await self.run(items[half:])
        else:
            self.committed_any = True


async def take_batch(
    queue: asyncio.Queue[T | None], max_batch: int, max_delay: float
) -> list[T | None]:
    """Wait for one item, then take more until there are `max_batch`, a None arrives (a
    wake-up: handle what is collected now) or `max_delay` has passed since the first.

    Returns everything taken, wake-ups included, so the caller can mark each done."""
    taken = [await queue.get()]
    deadline = time.monotonic() + max_delay
    while len(taken) < max_batch and taken[-1] is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            taken.append(await asyncio.wait_for(queue.get(), remaining))
        except TimeoutError:
            break
    return taken


class GroupCommit(Generic[T]):
    """A bounded queue drained in batches by one task; `handle` answers the batch's callers."""

    def __init__(
        self,
        handle: Callable[[list[T]], Awaitable[None]],
        *,
        name: str,
        max_batch: int,
        max_delay: float,
        max_queue: int,
    ) -> None:
        self._handle = handle
        self._name = name
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._max_queue = max_queue
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()  # None: a wake-up
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    def offer(self, item: T) -> bool:
        """Queue an item; False when the queue is full or closing (the caller says: retry)."""
        if self._closing or self._queue.qsize() >= self._max_queue:
            return False
        self._queue.put_nowait(item)
        return True

    async def stop(self) -> None:
        """Refuse new items, handle everything queued, then stop."""
        self._closing = True
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            taken = await take_batch(self._queue, self._max_batch, self._max_delay)
            batch = [item for item in taken if item is not None]
            try:
                if batch:
                    await self._handle(batch)
            except Exception:  # the loop must survive, or every later caller waits forever
                log.exception("batch handler failed", queue=self._name, size=len(batch))
            finally:
                for _ in taken:
                    self._queue.task_done()
