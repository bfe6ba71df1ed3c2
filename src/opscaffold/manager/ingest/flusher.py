"""Write-behind with group commit for heartbeats and metrics.

Handlers validate and enqueue, then wait: a report is answered (or acknowledged on a stream)
only after the batch holding it is committed, so a Manager killed at any moment loses nothing
it acknowledged. A batch is written when it is full or ~50 ms after its first item. Heartbeats
of one node in a batch coalesce (the latest counts); metric rows are unique per (node, time).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.db import transaction
from opscaffold.manager.errors import IngestBusy, NodeGone
from opscaffold.manager.ingest import repository
from opscaffold.manager.ingest.validation import AgentRow, MetricRow
from opscaffold.manager.kit.batching import GroupCommit, answer_failure, isolate
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger
from opscaffold.manager.metric import rollup
from opscaffold.manager.node import service as node_service
from opscaffold.manager.observability.metrics import ManagerMetrics

log = get_logger("opscaffold.ingest")


@dataclass(slots=True)
class Report:
    node_id: int
    heartbeat: bool = False
    agent: AgentRow | None = None
    metric: MetricRow | None = None
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Flusher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        metrics: ManagerMetrics,
        *,
        max_batch: int = 5000,
        max_delay: float = 0.05,
        max_queue: int = 100_000,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._batches: GroupCommit[Report] = GroupCommit(
            self._write,
            name="ingest-flusher",
            max_batch=max_batch,
            max_delay=max_delay,
            max_queue=max_queue,
        )

    def start(self) -> None:
        self._batches.start()

    def submit(self, report: Report) -> asyncio.Future[None]:
        """Queue a validated report; the future resolves once it is committed."""
        if not self._batches.offer(report):
            raise IngestBusy()
        self._metrics.ingest_queue_depth.set(self._batches.depth)
        return report.done

    async def stop(self) -> None:
        """Refuse new reports, write everything queued, then stop."""
        await self._batches.stop()

    async def _write(self, batch: list[Report]) -> None:
        await isolate(batch, self._commit_and_answer, _fail)

    async def _commit_and_answer(self, batch: list[Report]) -> None:
        started = time.perf_counter()
        stored, known = await self._commit(batch)
        self._metrics.ingest_queue_depth.set(self._batches.depth)
        self._metrics.ingest_flush_seconds.observe(time.perf_counter() - started)
        self._metrics.ingest_rows.labels(kind="metric").inc(stored)
        for report in batch:
            if report.done.done():
                continue
            if report.node_id in known:
                report.done.set_result(None)
            else:  # deleted while its report waited: nothing was written for it
                report.done.set_exception(NodeGone())

    async def _commit(self, batch: list[Report]) -> tuple[int, set[int]]:
        now = utcnow()
        heartbeats = {r.node_id for r in batch if r.heartbeat}
        agents = {r.node_id: r.agent for r in batch if r.agent is not None}
        metrics = {(r.metric.node_id, r.metric.timestamp): r.metric for r in batch if r.metric}
        async with transaction(self._sessions) as session:
            wanted = heartbeats | set(agents) | {node_id for node_id, _ in metrics}
            statuses = await node_service.statuses(session, wanted)  # deleted ones drop out
            await node_service.heard_from(
                session, {n: s for n, s in statuses.items() if n in heartbeats}, now
            )
            await repository.upsert_agents(
                session, [a for n, a in agents.items() if n in statuses], now
            )
            rows = [m for (node_id, _), m in metrics.items() if node_id in statuses]
            await repository.insert_metrics(session, rows)
            await rollup.mark_pending(session, (row.timestamp for row in rows))
            latest: dict[int, MetricRow] = {}
            for row in rows:
                if row.node_id not in latest or row.timestamp > latest[row.node_id].timestamp:
                    latest[row.node_id] = row
            await repository.upsert_latest(session, list(latest.values()))
        return len(rows), set(statuses)


def _fail(batch: list[Report], error: Exception, refused: bool) -> None:
    """The daemons keep what was not stored and send it again."""
    answer_failure(batch, error, refused, what="report", busy="could not store the report; retry")
