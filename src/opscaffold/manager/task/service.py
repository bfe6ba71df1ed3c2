"""Tasks: definitions (spec §4.2.3), executions on nodes, and what nodes report of them.

An execution is one `execution_id` with a row per node. Executing signs one envelope per node
and queues it as a `task` command in the outbox, in the caller's transaction; results come back
over gRPC and move each row through the table in states.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command import service as command_service
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import TaskSettings
from opscaffold.manager.errors import (
    DomainError,
    ExecutionNotFound,
    ExecutionTransitionRefused,
    InvalidArgument,
    NoTargetNodes,
    TaskBusy,
    TaskNotFound,
)
from opscaffold.manager.logging import get_logger
from opscaffold.manager.models import Task
from opscaffold.manager.node import service as node_service
from opscaffold.manager.task import output, repository, schedule
from opscaffold.manager.task.keys import TaskKey
from opscaffold.manager.task.repository import NodeRef
from opscaffold.manager.task.schemas import (
    CancelResult,
    ExecuteRequest,
    ExecuteResult,
    ExecutionDetail,
    ExecutionOutput,
    ExecutionRow,
    ExecutionSummary,
    ScheduleRuns,
    StateCounts,
    TaskCreate,
    TaskRead,
    TaskUpdate,
)
from opscaffold.manager.task.states import ACTIVE, FINAL, ExecutionState, allowed
from opscaffold.protocol.task import (
    FINAL_RESULTS,
    MASK,
    CancelOrder,
    ContentError,
    EnvelopeBody,
    TaskOrder,
    TaskResult,
    masked,
    parse_content,
)

MAX_ERROR = 4000  # characters of a node's reason kept
MAX_OUTPUT = 16 * 1024 * 1024  # characters of output stored, whatever an Agent was set to send
REPORTED: frozenset[str] = FINAL_RESULTS | {"running"}
ENVELOPE_OVERHEAD = 600  # bytes of an envelope besides its content (ids, times, signature)
SCHEDULE_BATCH = 500  # due tasks one scheduler pass fires at most; the rest go next pass
log = get_logger("opscaffold.task")


# -- definitions ----------------------------------------------------------------------------
def check_content(task_type: str, content: Any) -> dict[str, Any]:
    """The content as stored: validated for its type, each bad field named (`content.x`)."""
    try:
        parsed = parse_content(task_type, content)
    except ContentError as exc:
        raise InvalidArgument(
            exc.problems[0] if len(exc.problems) == 1 else str(exc),
            data={"errors": [{"field": p.split(":", 1)[0], "message": p} for p in exc.problems]},
        ) from exc
    return parsed.model_dump(mode="json")


def _check_target(target_type: str, values: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if target_type != "all" and not cleaned:
        raise InvalidArgument(f"target_value: a {target_type} target needs at least one value")
    if target_type == "node":
        bad = [v for v in cleaned if not v.isdigit() or int(v) < 1]
        if bad:
            raise InvalidArgument(f"target_value: {bad[0][:32]!r} is not a node id")
    return [] if target_type == "all" else cleaned


async def create(
    session: AsyncSession, body: TaskCreate, created_by: int, now: datetime, tz: ZoneInfo
) -> Task:
    """Define a task; with a `cron_expr` (read in `tz`) and enabled, it is scheduled from now."""
    task = Task(
        name=body.name.strip() or body.name,
        type=body.type,
        content=check_content(body.type, body.content),
        cron_expr=body.cron_expr,
        timeout=body.timeout,
        retry_count=body.retry_count,
        retry_interval=body.retry_interval,
        target_type=body.target_type,
        target_value=_check_target(body.target_type, body.target_value),
        status=body.status,
        description=body.description,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        misfire=body.misfire,
        next_run_at=schedule.first_run(body.cron_expr, body.status == "enabled", now, tz),
    )
    return await repository.add_task(session, task)


async def get(session: AsyncSession, task_id: int) -> Task:
    task = await repository.get_task(session, task_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id}")
    return task


def read(task: Task) -> TaskRead:
    read = TaskRead.model_validate(task)
    return read.model_copy(update={"content": masked(task.type, task.content)})


async def list_tasks(
    session: AsyncSession,
    offset: int,
    limit: int,
    *,
    name: str | None = None,
    type: str | None = None,
    status: str | None = None,
    target_type: str | None = None,
) -> tuple[int, list[TaskRead]]:
    filters = repository.TaskFilter(name, type, status, target_type)
    total, tasks = await repository.page_tasks(session, offset, limit, filters)
    return total, [read(t) for t in tasks]


async def update(
    session: AsyncSession, task_id: int, body: TaskUpdate, now: datetime, tz: ZoneInfo
) -> Task:
    """Change the fields given. A new `content` is checked against the (new or current)
    type; a new type needs its content. A secret value sent back masked keeps the stored one.
    A new schedule, or the task enabled or disabled, counts its next fire from now."""
    task = await get(session, task_id)
    changes = body.model_dump(exclude_unset=True)
    if (
        changes.get("type") is not None
        and changes["type"] != task.type
        and "content" not in changes
    ):
        raise InvalidArgument("content: a new type needs its content")
    for key in ("name", "type", "content", "timeout", "retry_count", "retry_interval", "misfire"):
        if key in changes and changes[key] is None:
            raise InvalidArgument(f"{key}: may not be null")
    values: dict[str, Any] = {k: v for k, v in changes.items() if k not in ("content",)}
    if "content" in changes:
        new_type = changes.get("type") or task.type
        content = _keep_secrets(task, new_type, changes["content"])
        values["content"] = check_content(new_type, content)
    target_type = changes.get("target_type") or task.target_type
    if "target_type" in changes or "target_value" in changes:
        given = changes.get("target_value")
        values["target_type"] = target_type
        values["target_value"] = _check_target(
            target_type, given if given is not None else task.target_value or []
        )
    if "status" in changes and changes["status"] is None:
        raise InvalidArgument("status: may not be null")
    values |= _rescheduled(task, changes, now, tz)
    values["updated_at"] = now
    await repository.update_task(session, task_id, values)
    return await get(session, task_id)


def _rescheduled(
    task: Task, changes: dict[str, Any], now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """The next due time when the schedule or the status changes (from now: fires passed
    while disabled are not made up); otherwise the one set keeps counting."""
    cron_expr = changes.get("cron_expr", task.cron_expr)
    status = changes.get("status") or task.status
    if cron_expr == task.cron_expr and status == task.status:
        return {}
    return {"next_run_at": schedule.first_run(cron_expr, status == "enabled", now, tz)}


def _keep_secrets(task: Task, new_type: str, content: Any) -> Any:
    """A secret value sent back as it was read (masked) keeps the value stored, so a content
    read, edited and written back does not replace secrets with the mask."""
    if new_type != "script" or task.type != "script" or not isinstance(content, dict):
        return content
    env, old = content.get("env"), task.content.get("env") or {}
    if not isinstance(env, dict):
        return content
    kept = {}
    for name, item in env.items():
        before = old.get(name)
        if (
            isinstance(item, dict)
            and item.get("secret")
            and item.get("value") == MASK
            and isinstance(before, dict)
            and before.get("secret")
        ):
            item = {**item, "value": before["value"]}
        kept[name] = item
    return {**content, "env": kept}


async def delete(session: AsyncSession, task_id: int) -> Task:
    """Delete a task; its executions stay as history. Refused while any is under way."""
    task = await get(session, task_id)
    if await repository.has_active_executions(session, task_id):
        raise TaskBusy(f"task {task_id} has executions pending or running; cancel them first")
    await repository.delete_task(session, task_id)
    return task


# -- executions -----------------------------------------------------------------------------
async def execute(
    session: AsyncSession,
    bus: CommandBus,
    key: TaskKey,
    task_id: int,
    request: ExecuteRequest,
    *,
    created_by: int | None,
    dispatch_ttl: timedelta,
    now: datetime,
    max_bytes: int,
    triggered_by: str = "manual",
) -> ExecuteResult:
    """Run a task on its target (or on `target_nodes`): a row per node, and a signed
    envelope per node queued as a `task` command, all in the caller's transaction. An
    envelope waits for an offline node until `dispatch_ttl`; the row then times out."""
    task = await get(session, task_id)
    if task.status != "enabled":
        raise InvalidArgument(f"task_id: task {task_id} is disabled")
    if request.target_nodes:
        node_ids = await node_service.resolve_target(
            session, "node", [str(n) for n in request.target_nodes]
        )
    else:
        node_ids = await node_service.resolve_target(
            session,
            task.target_type,  # type: ignore[arg-type]  # a column of TARGET_TYPES
            task.target_value or [],
        )
    nodes = await repository.node_refs(session, node_ids)
    if not nodes:
        raise NoTargetNodes(f"target: task {task_id}'s target names no node")
    size = len(json.dumps(task.content)) + ENVELOPE_OVERHEAD
    if size * len(nodes) > max_bytes:
        raise InvalidArgument(
            f"target: {len(nodes)} envelopes of {size} bytes each exceed "
            f"task.max_dispatch_bytes ({max_bytes}); run it on fewer nodes at a time"
        )
    execution_id = str(uuid.uuid4())
    not_after = now + dispatch_ttl
    payloads = await asyncio.to_thread(
        _orders, key, task, execution_id, nodes, int(_unix(now)), int(_unix(not_after))
    )
    command_ids = await command_service.send(
        session,
        bus,
        [n.id for n in nodes],
        "task",
        lambda node_id: payloads[node_id],
        dispatch_ttl,
        created_by=created_by,
        now=now,
    )
    deadline = not_after + timedelta(seconds=task.timeout)
    rows = [
        {
            "task_id": task.id,
            "execution_id": execution_id,
            "node_id": node.id,
            "status": "pending",
            "triggered_by": triggered_by,
            "created_by": created_by,
            "created_at": now,
            "command_id": command_id,
            "deadline_at": deadline,
            "output_truncated": 0,
        }
        for node, command_id in zip(nodes, command_ids, strict=True)
    ]
    await repository.insert_executions(session, rows)
    return ExecuteResult(execution_id=execution_id, total_nodes=len(nodes))


def _orders(
    key: TaskKey,
    task: Task,
    execution_id: str,
    nodes: Sequence[NodeRef],
    issued_at: int,
    not_after: int,
) -> dict[int, dict[str, Any]]:
    """One signed envelope per node (run off the event loop: thousands of signatures)."""
    orders: dict[int, dict[str, Any]] = {}
    for node in nodes:
        body = EnvelopeBody(
            execution_id=execution_id,
            task_id=task.id,
            node_id=node.id,
            node_uuid=node.uuid,
            type=task.type,
            content=task.content,
            timeout=task.timeout,
            issued_at=issued_at,
            not_after=not_after,
        )
        orders[node.id] = TaskOrder(envelope=key.seal(body)).model_dump(mode="json")
    return orders


def _unix(at: datetime) -> float:
    return at.replace(tzinfo=UTC).timestamp() if at.tzinfo is None else at.timestamp()


async def detail(session: AsyncSession, execution_id: str) -> ExecutionDetail:
    rows = await repository.execution_rows(session, execution_id)
    if not rows:
        raise ExecutionNotFound(f"no execution {execution_id}")
    (summary,) = await _summaries(session, [execution_id])
    nodes = [
        ExecutionRow.model_validate(row).model_copy(update={"node_name": name})
        for row, name in rows
    ]
    return ExecutionDetail(**summary.model_dump(), nodes=nodes)


async def list_executions(
    session: AsyncSession, task_id: int, offset: int, limit: int
) -> tuple[int, list[ExecutionSummary]]:
    await get(session, task_id)
    total, ids = await repository.page_executions(session, task_id, offset, limit)
    return total, await _summaries(session, ids)


async def _summaries(session: AsyncSession, ids: Sequence[str]) -> list[ExecutionSummary]:
    summaries = []
    for facts in await repository.batch_facts(session, ids):
        counts = StateCounts(**facts.counts)
        active = sum(facts.counts.get(s, 0) for s in ACTIVE)
        summaries.append(
            ExecutionSummary(
                execution_id=facts.execution_id,
                task_id=facts.task_id,
                triggered_by=facts.triggered_by,
                created_by=facts.created_by,
                created_at=facts.created_at,
                total=sum(facts.counts.values()),
                status="running" if active else "finished",
                counts=counts,
            )
        )
    return summaries


async def output_of(session: AsyncSession, execution_id: str, node_id: int) -> ExecutionOutput:
    row = await repository.one_execution(session, execution_id, node_id)
    if row is None:
        raise ExecutionNotFound(f"execution {execution_id} has no node {node_id}")
    return ExecutionOutput(
        execution_id=execution_id,
        node_id=node_id,
        status=row.status,
        exit_code=row.exit_code,
        output=row.output
        if row.output is not None
        else await output.text_so_far(session, execution_id, node_id),
        truncated=bool(row.output_truncated),
        error=row.error,
    )


async def cancel(
    session: AsyncSession, bus: CommandBus, execution_id: str, created_by: int | None, now: datetime
) -> CancelResult:
    """Cancel an execution: rows not started are cancelled now (their envelopes, if not yet
    delivered, expire); nodes that may be running it get a `task_cancel` command, and their
    Agents kill the process group and report `cancelled`."""
    if not await repository.execution_exists(session, execution_id):
        raise ExecutionNotFound(f"no execution {execution_id}")
    delivered = await repository.nodes_in_state(session, execution_id, ("running",))
    # Their envelope went out but they have not said they started: they may be starting it
    # right now, so they are told to stop too.
    started = await repository.delivered_pending(session, execution_id)
    cancelled = await repository.cancel_pending(session, execution_id, now)
    signal = sorted(set(delivered) | set(started))
    if signal:
        order = CancelOrder(execution_id=execution_id).model_dump(mode="json")
        await command_service.send(
            session,
            bus,
            signal,
            "task_cancel",
            order,
            timedelta(hours=1),
            created_by=created_by,
            now=now,
        )
    return CancelResult(execution_id=execution_id, cancelled=cancelled, signalled=len(signal))


# -- schedules ------------------------------------------------------------------------------
def preview(cron_expr: str, count: int, now: datetime, tz: ZoneInfo) -> ScheduleRuns:
    """The next `count` times an expression fires after `now`, checked as a task's is."""
    try:
        if not cron_expr.strip():
            raise schedule.CronInvalid("is required")
        expr = schedule.normalize(cron_expr)
    except schedule.CronInvalid as exc:
        raise InvalidArgument(
            f"cron_expr: {exc}", data={"errors": [{"field": "cron_expr", "message": str(exc)}]}
        ) from exc
    return ScheduleRuns(cron_expr=expr, next_runs=schedule.next_runs(expr, now, tz, count))


async def fire_due(
    session: AsyncSession,
    bus: CommandBus,
    key: Callable[[], TaskKey],
    settings: TaskSettings,
    now: datetime,
) -> int:
    """Fire the tasks whose schedule is due, found with one indexed query: each fire runs
    as `POST /tasks/{id}/execute` does, with `triggered_by=schedule`. A fire is claimed by
    moving the task's due time on in the same transaction as its execution, so however many
    replicas look at once, one fires it. Answers how many fired."""
    due = await repository.due_tasks(session, now, SCHEDULE_BATCH)
    if not due:
        return 0
    tz = schedule.zone(settings.cron_timezone)
    signer = key()
    fired = 0
    for task in due:
        decision = schedule.decide(
            task.cron_expr, task.misfire, task.next_run_at, now, tz, settings.misfire_grace
        )
        fired += await _fire(session, bus, signer, settings, task, decision, now)
    return fired


async def _fire(
    session: AsyncSession,
    bus: CommandBus,
    key: TaskKey,
    settings: TaskSettings,
    task: repository.DueTask,
    decision: schedule.Decision,
    now: datetime,
) -> int:
    """One due task: claim its due time, then execute it or let the time pass (missed, or
    refused: no nodes, too big). A refused fire is logged and not retried before the next."""
    try:
        async with session.begin_nested():
            if not await repository.advance_schedule(
                session, task.id, task.next_run_at, decision.next_run_at
            ):
                return 0  # another replica has fired it, or it was changed meanwhile
            if decision.fire_for is None:
                if decision.missed:
                    log.info("missed scheduled fire skipped", task_id=task.id)
                return 0
            await execute(
                session,
                bus,
                key,
                task.id,
                ExecuteRequest(),
                created_by=None,
                dispatch_ttl=settings.dispatch_ttl,
                now=now,
                max_bytes=settings.max_dispatch_bytes,
                triggered_by="schedule",
            )
            return 1
    except DomainError as exc:
        log.warning(
            "scheduled fire refused",
            task_id=task.id,
            scheduled_for=decision.fire_for.isoformat() if decision.fire_for else None,
            reason=exc.message,
        )
    await repository.advance_schedule(session, task.id, task.next_run_at, decision.next_run_at)
    return 0


# -- what nodes report ----------------------------------------------------------------------
def result_of(
    execution_id: str,
    status: str,
    exit_code: int | None,
    output: str,
    truncated: bool,
    error: str,
    started_at: int,
    finished_at: int,
) -> TaskResult:
    """Validate what a node reports, naming the field that is wrong."""
    try:
        uuid.UUID(execution_id)
    except ValueError as exc:
        raise InvalidArgument("execution_id must name an execution") from exc
    if status not in REPORTED:
        raise InvalidArgument(f"status '{status[:32]}' is not one of {sorted(REPORTED)}")
    for name, value in (("started_at", started_at), ("finished_at", finished_at)):
        if not 0 <= value < 2**33:
            raise InvalidArgument(f"{name}={value} is not a time")
    return TaskResult(
        execution_id=execution_id,
        status=status,
        exit_code=exit_code,
        output=output[:MAX_OUTPUT],
        truncated=truncated or len(output) > MAX_OUTPUT,
        error=error[:MAX_ERROR],
        started_at=started_at,
        finished_at=finished_at,
    )


async def record_result(
    session: AsyncSession, node_id: int, result: TaskResult, now: datetime
) -> bool:
    """Apply a node's report to its row. A report of the state the row is already in changes
    nothing and is accepted (a resend after a lost acknowledgement: stored once); a move the
    table forbids is refused. True when the row changed."""
    row = await repository.one_execution(session, result.execution_id, node_id, locked=True)
    if row is None:
        raise ExecutionNotFound(f"this node has no execution {result.execution_id}")
    current: ExecutionState = row.status  # type: ignore[assignment]
    target: ExecutionState = result.status
    if current == target:
        return False
    if not allowed(current, target):
        raise ExecutionTransitionRefused(f"an execution {current} cannot become {target}")
    values: dict[str, Any] = {"reported_at": now}
    if target == "running":
        started = _time(result.started_at) or now
        values["started_at"] = started
        task = await repository.get_task(session, row.task_id)
        if task is not None:  # the Agent enforces the timeout; this is the Manager's backstop
            values["deadline_at"] = now + timedelta(seconds=task.timeout)
    if target in FINAL:
        values["finished_at"] = _time(result.finished_at) or now
        if row.started_at is None:
            values["started_at"] = _time(result.started_at) or values["finished_at"]
        values["exit_code"] = result.exit_code
        values["output"] = await output.settle(session, result.execution_id, node_id, result.output)
        values["output_truncated"] = int(result.truncated)
        values["error"] = result.error or None
    return await repository.move(session, result.execution_id, node_id, target, values)


def _time(unix: int) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC).replace(tzinfo=None) if unix > 0 else None


async def time_out_overdue(session: AsyncSession, now: datetime, grace: timedelta) -> int:
    """Executions with no final result by their deadline plus `grace`: timed out."""
    return await repository.time_out_overdue(session, now - grace, now)
