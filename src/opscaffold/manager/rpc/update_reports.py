"""Update reports in batches: one transaction for all the reports of a short window.

A rolling update makes every node of a wave report each step of its update (downloading and
its progress, installing, verifying, the outcome) at about the same time: eight or so reports
per node, a few hundred a second for a wave of 100. One transaction of two statements per
report made them most of the Manager's work in a rollout. Here, as registrations do with the
registrar, the handler validates, queues and waits: a batch is applied by
`rollout.service.record_progress` with a fixed number of statements, and each caller is
answered once its batch is committed, with its own outcome (a refused report fails alone).

Reports are applied in arrival order, and a daemon sends the next report of an update only
when the last one is answered, so its steps never overtake each other. A batch the database
refuses is split until the report it cannot store is alone; when the database itself is in
trouble the callers are told to retry, and the daemon resends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.db import transaction
from opscaffold.manager.errors import (
    DomainError,
    IngestBusy,
)
from opscaffold.manager.kit.batching import GroupCommit, answer_failure, isolate
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger
from opscaffold.manager.rollout import service as rollout_service
from opscaffold.manager.rollout.service import NodeReport, RecordsRaced, UpdateProgress

log = get_logger("opscaffold.rpc.update_reports")
MAX_BATCH = 512
# Short: a daemon waits for each answer before its next report, so the window adds to every
# step of an update, while reports of a whole wave still share a batch.
MAX_DELAY = 0.02
MAX_QUEUE = 4096  # a few batches; beyond it daemons are told to retry (RESOURCE_EXHAUSTED)


def _future() -> asyncio.Future[bool]:
    return asyncio.get_running_loop().create_future()


@dataclass(slots=True)
class Pending:
    """A validated report waiting for its batch; resolves to whether the record changed."""

    item: NodeReport
    done: asyncio.Future[bool] = field(default_factory=_future)


class UpdateReports:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_batch: int = MAX_BATCH,
        max_delay: float = MAX_DELAY,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self._sessions = sessions
        self._batches: GroupCommit[Pending] = GroupCommit(
            self._handle,
            name="update-reports",
            max_batch=max_batch,
            max_delay=max_delay,
            max_queue=max_queue,
        )

    def start(self) -> None:
        self._batches.start()

    async def stop(self) -> None:
        """Turn new reports away, apply everything queued, then stop."""
        await self._batches.stop()

    def submit(self, node_id: int, report: UpdateProgress) -> asyncio.Future[bool]:
        """Queue a validated report; the future resolves once the batch holding it is
        committed (True: the record changed), or fails with a DomainError (a refusal of this
        report, or the batch's failure). Raises IngestBusy when the queue is full."""
        pending = Pending(NodeReport(node_id, report))
        if not self._batches.offer(pending):
            raise IngestBusy("too many update reports at once; retry later")
        return pending.done

    async def _handle(self, batch: list[Pending]) -> None:
        waiting = [p for p in batch if not p.done.done()]  # a caller past its deadline has gone
        if waiting:
            await isolate(waiting, self._commit, _fail)

    async def _commit(self, reports: list[Pending]) -> None:
        async with transaction(self._sessions) as session:
            outcomes = await rollout_service.record_progress(
                session, [p.item for p in reports], utcnow()
            )
        for pending, outcome in zip(reports, outcomes, strict=True):
            if pending.done.done():
                continue
            if isinstance(outcome, DomainError):
                pending.done.set_exception(outcome)
            else:
                pending.done.set_result(outcome)


def _fail(reports: list[Pending], error: Exception, refused: bool) -> None:
    answer_failure(reports, error, refused, what="update report", races=(RecordsRaced,))
