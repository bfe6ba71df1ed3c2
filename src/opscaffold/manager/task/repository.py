"""SQL for tasks and their executions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import Node, NodeCommand, Task, TaskExecution, TaskOutputChunk
from opscaffold.manager.node.repository import chunks
from opscaffold.manager.task.states import ACTIVE, ExecutionState, sources

INSERT_CHUNK = 1000  # rows per multi-row statement


@dataclass(frozen=True, slots=True)
class NodeRef:
    id: int
    uuid: str


# -- tasks ----------------------------------------------------------------------------------
async def add_task(session: AsyncSession, task: Task) -> Task:
    session.add(task)
    await session.flush()
    return task


async def get_task(session: AsyncSession, task_id: int) -> Task | None:
    stmt = sa.select(Task).where(Task.id == task_id).execution_options(populate_existing=True)
    return (await session.scalars(stmt)).first()


@dataclass(frozen=True, slots=True)
class TaskFilter:
    name: str | None = None  # a substring of the name
    type: str | None = None
    status: str | None = None
    target_type: str | None = None


def _task_where(filters: TaskFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if filters.name:
        escaped = filters.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Task.name.like(f"%{escaped}%", escape="\\"))
    for column, value in (
        (Task.type, filters.type),
        (Task.status, filters.status),
        (Task.target_type, filters.target_type),
    ):
        if value is not None:
            where.append(column == value)
    return where


async def page_tasks(
    session: AsyncSession, offset: int, limit: int, filters: TaskFilter
) -> tuple[int, Sequence[Task]]:
    where = _task_where(filters)
    total = await session.scalar(sa.select(sa.func.count()).select_from(Task).where(*where))
    stmt = sa.select(Task).where(*where).order_by(Task.id.desc()).offset(offset).limit(limit)
    return int(total or 0), (await session.scalars(stmt)).all()


@dataclass(frozen=True, slots=True)
class DueTask:
    id: int
    cron_expr: str
    misfire: str
    next_run_at: datetime


async def due_tasks(session: AsyncSession, now: datetime, limit: int) -> list[DueTask]:
    """Enabled scheduled tasks due by `now`, earliest first: one range read of the
    (status, next_run_at) index, in its order, however many tasks exist."""
    rows = await session.execute(
        sa.select(Task.id, Task.cron_expr, Task.misfire, Task.next_run_at)
        .where(
            Task.next_run_at <= now,
            Task.status == "enabled",
            Task.cron_expr.is_not(None),
        )
        .order_by(Task.next_run_at, Task.id)
        .limit(limit)
    )
    return [DueTask(r.id, r.cron_expr, r.misfire, r.next_run_at) for r in rows]


async def advance_schedule(
    session: AsyncSession, task_id: int, due: datetime, next_run_at: datetime | None
) -> bool:
    """Claim the task's fire due at `due` by moving its due time on: True for the one
    transaction whose UPDATE still found `due` there (the row lock makes the others wait,
    then find it moved). `updated_at` stays: the definition did not change."""
    result = await session.execute(
        sa.update(Task)
        .where(Task.id == task_id, Task.next_run_at == due, Task.status == "enabled")
        .values(next_run_at=next_run_at, updated_at=Task.updated_at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delivered_pending(session: AsyncSession, execution_id: str) -> list[int]:
    """Nodes whose envelope went out but that have not said they started."""
    stmt = (
        sa.select(TaskExecution.node_id)
        .join(NodeCommand, NodeCommand.id == TaskExecution.command_id)
        .where(
            TaskExecution.execution_id == execution_id,
            TaskExecution.status == "pending",
            NodeCommand.state.in_(("sent", "done")),
        )
    )
    return list(await session.scalars(stmt))


async def update_task(session: AsyncSession, task_id: int, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(Task)
        .where(Task.id == task_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def delete_task(session: AsyncSession, task_id: int) -> None:
    await session.execute(sa.delete(Task).where(Task.id == task_id))


async def has_active_executions(session: AsyncSession, task_id: int) -> bool:
    stmt = (
        sa.select(TaskExecution.id)
        .where(TaskExecution.task_id == task_id, TaskExecution.status.in_(ACTIVE))
        .limit(1)
    )
    return await session.scalar(stmt) is not None


# -- executions -----------------------------------------------------------------------------
async def node_refs(session: AsyncSession, node_ids: Sequence[int]) -> list[NodeRef]:
    refs: list[NodeRef] = []
    for part in chunks(node_ids):
        rows = await session.execute(sa.select(Node.id, Node.uuid).where(Node.id.in_(part)))
        refs += [NodeRef(row.id, row.uuid) for row in rows]
    return sorted(refs, key=lambda r: r.id)


async def insert_executions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Every node's row of an execution, in batched multi-row INSERTs."""
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(sa.insert(TaskExecution), list(rows[start : start + INSERT_CHUNK]))


async def execution_rows(
    session: AsyncSession, execution_id: str
) -> list[tuple[TaskExecution, str | None]]:
    stmt = (
        sa.select(TaskExecution, Node.hostname)
        .outerjoin(Node, Node.id == TaskExecution.node_id)
        .where(TaskExecution.execution_id == execution_id)
        .order_by(TaskExecution.node_id)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def execution_exists(session: AsyncSession, execution_id: str) -> bool:
    stmt = sa.select(TaskExecution.id).where(TaskExecution.execution_id == execution_id).limit(1)
    return await session.scalar(stmt) is not None


async def one_execution(
    session: AsyncSession, execution_id: str, node_id: int, *, locked: bool = False
) -> TaskExecution | None:
    stmt = sa.select(TaskExecution).where(
        TaskExecution.execution_id == execution_id, TaskExecution.node_id == node_id
    )
    if locked:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def page_executions(
    session: AsyncSession, task_id: int, offset: int, limit: int
) -> tuple[int, list[str]]:
    """The task's executions (batches), newest first: their ids."""
    batches = (
        sa.select(
            TaskExecution.execution_id,
            sa.func.max(TaskExecution.id).label("newest"),
        )
        .where(TaskExecution.task_id == task_id)
        .group_by(TaskExecution.execution_id)
        .subquery()
    )
    total = await session.scalar(sa.select(sa.func.count()).select_from(batches))
    stmt = (
        sa.select(batches.c.execution_id)
        .order_by(batches.c.newest.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), list(await session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class BatchFacts:
    execution_id: str
    task_id: int
    triggered_by: str
    created_by: int | None
    created_at: datetime
    counts: dict[str, int]


async def batch_facts(session: AsyncSession, execution_ids: Sequence[str]) -> list[BatchFacts]:
    """Each execution's task, trigger, creator and rows counted per state: two grouped queries."""
    if not execution_ids:
        return []
    heads = await session.execute(
        sa.select(
            TaskExecution.execution_id,
            sa.func.min(TaskExecution.task_id),
            sa.func.min(TaskExecution.triggered_by),
            sa.func.min(TaskExecution.created_by),
            sa.func.min(TaskExecution.created_at),
        )
        .where(TaskExecution.execution_id.in_(execution_ids))
        .group_by(TaskExecution.execution_id)
    )
    counted = await session.execute(
        sa.select(TaskExecution.execution_id, TaskExecution.status, sa.func.count())
        .where(TaskExecution.execution_id.in_(execution_ids))
        .group_by(TaskExecution.execution_id, TaskExecution.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for execution_id, status, n in counted:
        counts.setdefault(execution_id, {})[status] = int(n)
    facts = {
        row[0]: BatchFacts(row[0], int(row[1]), row[2], row[3], row[4], counts.get(row[0], {}))
        for row in heads
    }
    return [facts[e] for e in execution_ids if e in facts]


async def move(
    session: AsyncSession,
    execution_id: str,
    node_id: int,
    target: ExecutionState,
    values: dict[str, Any],
) -> bool:
    """Move the node's execution to `target` if the table allows it from its current state."""
    result = await session.execute(
        sa.update(TaskExecution)
        .where(
            TaskExecution.execution_id == execution_id,
            TaskExecution.node_id == node_id,
            TaskExecution.status.in_(sources(target)),
        )
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cancel_pending(session: AsyncSession, execution_id: str, now: datetime) -> int:
    """Cancel the execution's rows that have not started; their undelivered envelopes expire."""
    pending = sa.and_(TaskExecution.execution_id == execution_id, TaskExecution.status == "pending")
    commands = sa.select(TaskExecution.command_id).where(
        pending, TaskExecution.command_id.is_not(None)
    )
    await session.execute(
        sa.update(NodeCommand)
        .where(NodeCommand.id.in_(commands), NodeCommand.state == "pending")
        .values(state="expired")
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        sa.update(TaskExecution)
        .where(pending, TaskExecution.status.in_(sources("cancelled")))
        .values(status="cancelled", finished_at=now, error="cancelled")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def nodes_in_state(
    session: AsyncSession, execution_id: str, states: Sequence[str]
) -> list[int]:
    stmt = sa.select(TaskExecution.node_id).where(
        TaskExecution.execution_id == execution_id, TaskExecution.status.in_(states)
    )
    return list(await session.scalars(stmt))


async def time_out_overdue(session: AsyncSession, before: datetime, now: datetime) -> int:
    """Every active execution whose deadline is earlier than `before`: timed out. One UPDATE
    through the (status, deadline_at) index, however many there are."""
    result = await session.execute(
        sa.update(TaskExecution)
        .where(
            TaskExecution.status.in_(sources("timeout")),
            TaskExecution.deadline_at < before,
        )
        .values(
            status="timeout",
            finished_at=now,
            error="no result from the node by the deadline",
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- output while an execution runs -----------------------------------------------------------
def _parts_of(execution_id: str, node_id: int) -> list[sa.ColumnElement[bool]]:
    return [TaskOutputChunk.execution_id == execution_id, TaskOutputChunk.node_id == node_id]


async def output_end(session: AsyncSession, execution_id: str, node_id: int) -> int:
    """Bytes of output stored so far (where the next part starts)."""
    stmt = sa.select(sa.func.max(TaskOutputChunk.end_offset)).where(
        *_parts_of(execution_id, node_id)
    )
    return int(await session.scalar(stmt) or 0)


async def add_output(
    session: AsyncSession,
    execution_id: str,
    node_id: int,
    start: int,
    end: int,
    data: str,
    now: datetime,
) -> None:
    await session.execute(
        sa.insert(TaskOutputChunk).values(
            execution_id=execution_id,
            node_id=node_id,
            start_offset=start,
            end_offset=end,
            data=data,
            created_at=now,
        )
    )


async def output_after(
    session: AsyncSession, execution_id: str, node_id: int, offset: int, limit: int
) -> Sequence[TaskOutputChunk]:
    """Stored parts that end after byte `offset`, in order, at most `limit`."""
    stmt = (
        sa.select(TaskOutputChunk)
        .where(*_parts_of(execution_id, node_id), TaskOutputChunk.end_offset > offset)
        .order_by(TaskOutputChunk.start_offset)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def output_parts(session: AsyncSession, execution_id: str, node_id: int) -> list[str]:
    stmt = (
        sa.select(TaskOutputChunk.data)
        .where(*_parts_of(execution_id, node_id))
        .order_by(TaskOutputChunk.start_offset)
    )
    return list(await session.scalars(stmt))


async def drop_output(session: AsyncSession, execution_id: str, node_id: int) -> None:
    await session.execute(sa.delete(TaskOutputChunk).where(*_parts_of(execution_id, node_id)))


@dataclass(frozen=True, slots=True)
class OutputHead:
    """What a reader of an execution's output needs besides the output itself."""

    status: str
    exit_code: int | None
    truncated: bool
    has_output: bool  # the final result's output is stored


async def output_head(session: AsyncSession, execution_id: str, node_id: int) -> OutputHead | None:
    stmt = sa.select(
        TaskExecution.status,
        TaskExecution.exit_code,
        TaskExecution.output_truncated,
        TaskExecution.output.is_not(None),
    ).where(TaskExecution.execution_id == execution_id, TaskExecution.node_id == node_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return OutputHead(row[0], row[1], bool(row[2]), bool(row[3]))


async def stored_output(session: AsyncSession, execution_id: str, node_id: int) -> str | None:
    stmt = sa.select(TaskExecution.output).where(
        TaskExecution.execution_id == execution_id, TaskExecution.node_id == node_id
    )
    output: str | None = await session.scalar(stmt)
    return output
