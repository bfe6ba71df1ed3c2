"""Tasks over REST (spec §4.4 `/tasks`, `/executions`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query

from opscaffold.manager.deps import AuditDep, CommandBusDep, CurrentUser, RuntimeDep, SessionDep
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.envelope import Envelope, Page
from opscaffold.manager.kit.pagination import PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.sse import KEEP_ALIVE, MEDIA_TYPE, EventStreamResponse, event
from opscaffold.manager.kit.storable import IdPath
from opscaffold.manager.limits import body_limit
from opscaffold.manager.node.schemas import TargetType
from opscaffold.manager.runtime import Runtime
from opscaffold.manager.task import output, schedule, service
from opscaffold.manager.task.output import EndEvent
from opscaffold.manager.task.schemas import (
    CancelResult,
    ExecuteRequest,
    ExecuteResult,
    ExecutionDetail,
    ExecutionOutput,
    ExecutionSummary,
    ScheduleRuns,
    TaskCreate,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)
from opscaffold.protocol.task import MAX_ENVELOPE_BYTES, TaskType

router = APIRouter(prefix=f"{API_PREFIX}/tasks", tags=["tasks"])
execution_router = APIRouter(prefix=f"{API_PREFIX}/executions", tags=["tasks"])
KEEP_ALIVE_S = 15.0  # an idle output stream gets a comment line this often
ExecutionId = Annotated[
    str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
]


@router.get("", response_model=Envelope[Page[TaskRead]])
async def list_tasks(
    session: SessionDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=128, description="part of the name")] = None,
    type: TaskType | None = None,
    status: TaskStatus | None = None,
    target_type: TargetType | None = None,
) -> Envelope[Page[TaskRead]]:
    """Tasks, newest first."""
    total, items = await service.list_tasks(
        session,
        page.offset,
        page.page_size,
        name=name,
        type=type,
        status=status,
        target_type=target_type,
    )
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.post("", response_model=Envelope[TaskRead], status_code=201)
@body_limit(MAX_ENVELOPE_BYTES)  # a 1 MiB script may take more once JSON-escaped
async def create_task(
    body: TaskCreate,
    session: SessionDep,
    principal: CurrentUser,
    audit: AuditDep,
    runtime: RuntimeDep,
) -> Envelope[TaskRead]:
    """Define a task. `content` by `type`: script {interpreter, script, args, env, workdir},
    file {content, dest, mode, owner, overwrite}, service {name, action}, custom {handler,
    params}. With `cron_expr` (5 fields) an enabled task runs on that schedule, once per
    fire across all Managers (`triggered_by=schedule`); `next_run_at` says when next."""
    tz = schedule.zone(runtime.settings.task.cron_timezone)
    task = await service.create(session, body, principal.user_id, utcnow(), tz)
    audit.resource_id = str(task.id)
    audit.detail = {"name": task.name, "type": task.type, "target_type": task.target_type}
    return ok(service.read(task))


@router.get("/schedule/next", response_model=Envelope[ScheduleRuns])
async def preview_schedule(
    runtime: RuntimeDep,
    cron_expr: Annotated[str, Query(max_length=64, description="5 fields")],
    count: Annotated[int, Query(ge=1, le=schedule.MAX_PREVIEW)] = 5,
) -> Envelope[ScheduleRuns]:
    """The next times a cron expression fires, in UTC, read in the zone the scheduler uses
    (`task.cron_timezone`); a bad expression is refused as a task's would be."""
    tz = schedule.zone(runtime.settings.task.cron_timezone)
    return ok(service.preview(cron_expr, count, utcnow(), tz))


@router.get("/{id}", response_model=Envelope[TaskRead])
async def get_task(id: IdPath, session: SessionDep) -> Envelope[TaskRead]:
    return ok(service.read(await service.get(session, id)))


@router.put("/{id}", response_model=Envelope[TaskRead])
@body_limit(MAX_ENVELOPE_BYTES)
async def update_task(
    id: IdPath, body: TaskUpdate, session: SessionDep, audit: AuditDep, runtime: RuntimeDep
) -> Envelope[TaskRead]:
    """Change a task's fields. In a new content, a secret value sent back masked (as read)
    keeps the value stored. A new `cron_expr` or `status` takes effect from now."""
    audit.detail = {"fields": sorted(body.model_dump(exclude_unset=True))}
    tz = schedule.zone(runtime.settings.task.cron_timezone)
    return ok(service.read(await service.update(session, id, body, utcnow(), tz)))


@router.delete("/{id}", response_model=Envelope[TaskRead])
async def delete_task(id: IdPath, session: SessionDep, audit: AuditDep) -> Envelope[TaskRead]:
    """Delete a task (its executions stay as history); refused while one is under way."""
    task = await service.delete(session, id)
    audit.detail = {"name": task.name}
    return ok(service.read(task))


@router.post("/{id}/execute", response_model=Envelope[ExecuteResult])
async def execute_task(
    id: IdPath,
    session: SessionDep,
    bus: CommandBusDep,
    runtime: RuntimeDep,
    principal: CurrentUser,
    audit: AuditDep,
    body: ExecuteRequest | None = None,
) -> Envelope[ExecuteResult]:
    """Run the task on its target, or on `target_nodes`: one signed envelope per node."""
    request = body or ExecuteRequest()
    result = await service.execute(
        session,
        bus,
        runtime.task_key,
        id,
        request,
        created_by=principal.user_id,
        dispatch_ttl=runtime.settings.task.dispatch_ttl,
        now=utcnow(),
        max_bytes=runtime.settings.task.max_dispatch_bytes,
    )
    audit.detail = {"execution_id": result.execution_id, "total_nodes": result.total_nodes}
    return ok(result)


@router.get("/{id}/executions", response_model=Envelope[Page[ExecutionSummary]])
async def list_task_executions(
    id: IdPath, session: SessionDep, page: PageDep
) -> Envelope[Page[ExecutionSummary]]:
    """The task's executions, newest first, each with its nodes counted per state."""
    total, items = await service.list_executions(session, id, page.offset, page.page_size)
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@execution_router.get("/{execution_id}", response_model=Envelope[ExecutionDetail])
async def get_execution(
    execution_id: ExecutionId, session: SessionDep
) -> Envelope[ExecutionDetail]:
    """An execution's summary and each node's row (output: see .../nodes/{node_id}/output)."""
    return ok(await service.detail(session, execution_id))


@execution_router.get(
    "/{execution_id}/nodes/{node_id}/output", response_model=Envelope[ExecutionOutput]
)
async def get_execution_output(
    execution_id: ExecutionId, node_id: IdPath, session: SessionDep
) -> Envelope[ExecutionOutput]:
    """One node's captured output (secret values masked by the Agent), exit code and error."""
    return ok(await service.output_of(session, execution_id, node_id))


STREAM_DESCRIPTION = """Server-Sent Events, until the execution ends.

`event: output`, `id: <offset after this part>`,
`data: {"offset": <start offset>, "data": "<text>"}`: the output from the requested offset on,
what is stored, then each part as the node sends it. Then `event: end`,
`data: {"status": "<final state>", "exit_code": <int|null>, "truncated": <bool>}`, and the
stream closes. A comment line `: ping` is sent every ~15 s while nothing else is."""


@execution_router.get(
    "/{execution_id}/nodes/{node_id}/output/stream",
    response_model=None,
    responses={
        200: {
            "description": STREAM_DESCRIPTION,
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
async def stream_execution_output(
    execution_id: ExecutionId,
    node_id: IdPath,
    session: SessionDep,
    runtime: RuntimeDep,
    offset: Annotated[
        int, Query(ge=0, le=output.MAX_OFFSET, description="bytes of the output to skip")
    ] = 0,
    last_event_id: Annotated[
        str | None,
        Header(description="the id of the last event received; wins over offset"),
    ] = None,
) -> EventStreamResponse:
    """One node's output as it is produced (secret values masked by the Agent), from the
    start or from a byte offset, then how the execution ended."""
    start = output.resume_offset(offset, last_event_id)
    await output.head_of(session, execution_id, node_id)  # unknown: 404 before any event
    return EventStreamResponse(_output_events(runtime, execution_id, node_id, start))


async def _output_events(
    runtime: Runtime, execution_id: str, node_id: int, offset: int
) -> AsyncGenerator[bytes]:
    poll_s = min(runtime.settings.task.output_poll_interval.total_seconds(), KEEP_ALIVE_S)
    quiet_since = time.monotonic()
    with runtime.output_bus.watch(execution_id, node_id) as wake:
        follow = output.follow(runtime.sessions, execution_id, node_id, offset, wake, poll_s)
        async with contextlib.aclosing(follow) as events:
            async for found in events:
                if found is None:
                    if time.monotonic() - quiet_since >= KEEP_ALIVE_S:
                        quiet_since = time.monotonic()
                        yield KEEP_ALIVE
                    continue
                quiet_since = time.monotonic()
                if isinstance(found, EndEvent):
                    end = {"status": found.status, "exit_code": found.exit_code}
                    yield event("end", end | {"truncated": found.truncated})
                else:
                    part = {"offset": found.start, "data": found.data}
                    yield event("output", part, found.end)


@execution_router.post("/{execution_id}/cancel", response_model=Envelope[CancelResult])
async def cancel_execution(
    execution_id: ExecutionId,
    session: SessionDep,
    bus: CommandBusDep,
    principal: CurrentUser,
    audit: AuditDep,
) -> Envelope[CancelResult]:
    """Cancel: rows not started end `cancelled` now; running ones when their Agent has
    killed the process group."""
    audit.resource_id = execution_id
    result = await service.cancel(session, bus, execution_id, principal.user_id, utcnow())
    audit.detail = {"cancelled": result.cancelled, "signalled": result.signalled}
    return ok(result)
