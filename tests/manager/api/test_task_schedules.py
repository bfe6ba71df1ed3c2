"""Tasks on a cron schedule, on every database: the next fire time in the API, the preview of
an expression, and the scheduler's passes (fired once per schedule, as `POST .../execute`
does, with `triggered_by=schedule`), driven with the clock the test chooses."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.app import all_jobs
from opscaffold.manager.db import transaction
from opscaffold.manager.jobs.runner import JobRunner
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Task, TaskExecution
from opscaffold.manager.task import service
from opscaffold.protocol import task as protocol
from tests.helpers import wait_until
from tests.manager import factories as f
from tests.manager.api.test_tasks import TASKS, create
from tests.manager.conftest import Stack, bearer, login, make_user

pytestmark = pytest.mark.timeout(60)
PREVIEW = f"{TASKS}/schedule/next"


def parse(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value[:-1])


async def read(client: httpx.AsyncClient, headers: dict[str, str], task_id: int) -> Any:
    response = await client.get(f"{TASKS}/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def put(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: int, **fields: Any
) -> Any:
    response = await client.put(f"{TASKS}/{task_id}", json=fields, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def fire(stack: Stack, now: datetime) -> int:
    """One scheduler pass at `now`, in its own transaction, as the job runs it."""
    async with transaction(stack.runtime.sessions) as session:
        return await service.fire_due(
            session,
            stack.runtime.command_bus,
            lambda: stack.runtime.task_key,
            stack.settings.task,
            now,
        )


async def next_run(stack: Stack, task_id: int) -> datetime | None:
    async with stack.runtime.sessions() as session:
        value: datetime | None = await session.scalar(
            sa.select(Task.next_run_at).where(Task.id == task_id)
        )
        return value


async def executions(stack: Stack) -> list[TaskExecution]:
    async with stack.runtime.sessions() as session:
        stmt = sa.select(TaskExecution).order_by(TaskExecution.id)
        return list((await session.scalars(stmt)).all())


# -- the API --------------------------------------------------------------------------------
async def test_next_run_at_follows_the_schedule_and_the_status(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    before = utcnow()
    task_id = await create(client, admin_headers, cron_expr="*/10  * * * *")
    task = await read(client, admin_headers, task_id)
    assert task["cron_expr"] == "*/10 * * * *"
    assert task["misfire"] == "skip"
    first = parse(task["next_run_at"])
    assert before < first <= before + timedelta(minutes=10)
    assert (first.minute % 10, first.second) == (0, 0)

    # unrelated edits keep counting towards the same time
    assert (await put(client, admin_headers, task_id, timeout=60))["next_run_at"] == task[
        "next_run_at"
    ]
    assert (await put(client, admin_headers, task_id, status="disabled"))["next_run_at"] is None
    enabled = await put(client, admin_headers, task_id, status="enabled", misfire="run_once")
    assert parse(enabled["next_run_at"]) == first
    assert enabled["misfire"] == "run_once"
    hourly = await put(client, admin_headers, task_id, cron_expr="0 * * * *")
    assert parse(hourly["next_run_at"]).minute == 0
    assert (await put(client, admin_headers, task_id, cron_expr=None))["next_run_at"] is None

    plain = await read(client, admin_headers, await create(client, admin_headers, name="plain"))
    assert plain["next_run_at"] is None
    disabled = await create(client, admin_headers, cron_expr="* * * * *", status="disabled")
    assert (await read(client, admin_headers, disabled))["next_run_at"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron_expr": "* * * * * *"}, "cron_expr"),
        ({"cron_expr": "not a cron at all"}, "cron_expr"),
        ({"cron_expr": "0 0 31 2 *"}, "cron_expr"),
        ({"misfire": "sometimes"}, "misfire"),
        ({"misfire": None}, "misfire"),
    ],
)
async def test_bad_schedules_are_refused_on_update_naming_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    task_id = await create(client, admin_headers, cron_expr="* * * * *")

    response = await client.put(f"{TASKS}/{task_id}", json=fields, headers=admin_headers)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    assert field in response.json()["message"]


async def test_a_bad_misfire_is_refused_on_create(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        TASKS,
        json={"name": "x", "type": "script", "content": {"script": "x"}, "misfire": "later"},
        headers=admin_headers,
    )
    assert response.status_code == 400, response.text
    assert "misfire" in response.json()["message"]


async def test_the_preview_lists_the_next_times_in_utc_for_every_role(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_user(client, admin_headers, "viewer")
    viewer = bearer((await login(client, "viewer", "Str0ng-Password"))["token"])
    before = utcnow()

    response = await client.get(
        PREVIEW, params={"cron_expr": "*/15  * * * *", "count": 3}, headers=viewer
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0
    assert body["data"]["cron_expr"] == "*/15 * * * *"
    runs = [parse(r) for r in body["data"]["next_runs"]]
    assert len(runs) == 3
    assert before < runs[0] <= before + timedelta(minutes=15)
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(minutes=15)] * 2
    default = await client.get(PREVIEW, params={"cron_expr": "0 3 * * *"}, headers=viewer)
    assert len(default.json()["data"]["next_runs"]) == 5
    assert (await client.get(PREVIEW, params={"cron_expr": "* * * * *"})).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cron_expr": "* * * * * *"}, "cron_expr"),
        ({"cron_expr": "garbage"}, "cron_expr"),
        ({"cron_expr": "   "}, "cron_expr"),
        ({"cron_expr": "0 0 30 2 *"}, "cron_expr"),
        ({}, "cron_expr"),
        ({"cron_expr": "* * * * *", "count": 0}, "count"),
        ({"cron_expr": "* * * * *", "count": 21}, "count"),
        ({"cron_expr": "* * * * *", "count": "many"}, "count"),
    ],
)
async def test_a_bad_preview_is_refused_naming_the_parameter(
    client: httpx.AsyncClient, admin_headers: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = await client.get(PREVIEW, params=params, headers=admin_headers)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    assert field in response.json()["message"]


# -- the scheduler --------------------------------------------------------------------------
async def test_a_due_task_fires_once_as_execute_does_with_triggered_by_schedule(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    nodes = [await f.add_node(stack, f"web-{i}", status="online") for i in range(2)]
    task_id = await create(client, admin_headers, cron_expr="* * * * *")
    due = await next_run(stack, task_id)
    assert due is not None

    assert await fire(stack, due - timedelta(seconds=1)) == 0  # not yet
    assert await fire(stack, due) == 1
    assert await fire(stack, due + timedelta(seconds=5)) == 0  # that minute has fired

    assert await next_run(stack, task_id) == due + timedelta(minutes=1)
    rows = await executions(stack)
    assert {r.node_id for r in rows} == set(nodes)
    assert {(r.triggered_by, r.created_by, r.status) for r in rows} == {
        ("schedule", None, "pending")
    }
    orders = await f.commands(stack, "task")
    assert sorted(o["node_id"] for o in orders) == nodes
    public = stack.runtime.task_key.private.public_key()
    body = protocol.open_envelope(
        protocol.TaskOrder.model_validate(orders[0]["payload"]).envelope, public
    )
    assert body.execution_id == rows[0].execution_id
    history = (await client.get(f"{TASKS}/{task_id}/executions", headers=admin_headers)).json()
    [summary] = history["data"]["items"]
    assert (summary["triggered_by"], summary["created_by"], summary["total"]) == (
        "schedule",
        None,
        2,
    )
    read_back = await read(client, admin_headers, task_id)
    assert parse(read_back["next_run_at"]) == due + timedelta(minutes=1)

    assert await fire(stack, due + timedelta(minutes=1)) == 1  # the next minute
    assert len({r.execution_id for r in await executions(stack)}) == 2


async def test_disabled_tasks_do_not_fire_and_edits_count_from_the_next_pass(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1", status="online")
    task_id = await create(client, admin_headers, cron_expr="* * * * *")
    due = await next_run(stack, task_id)
    assert due is not None
    await put(client, admin_headers, task_id, status="disabled")

    assert await fire(stack, due + timedelta(seconds=1)) == 0

    await put(client, admin_headers, task_id, status="enabled", cron_expr="0 0 1 1 *")
    yearly = await next_run(stack, task_id)
    assert yearly is not None
    assert (yearly.month, yearly.day, yearly.hour) == (1, 1, 0)
    assert await fire(stack, due + timedelta(minutes=5)) == 0
    assert await fire(stack, yearly) == 1
    assert await executions(stack) != []


@pytest.mark.parametrize(("misfire", "fired"), [("skip", 0), ("run_once", 1)])
async def test_a_fire_missed_while_no_manager_ran_runs_once_or_waits(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack, misfire: str, fired: int
) -> None:
    await f.add_node(stack, "web-1", status="online")
    task_id = await create(client, admin_headers, cron_expr="0 * * * *", misfire=misfire)
    due = await next_run(stack, task_id)
    assert due is not None
    back = due + timedelta(hours=5, minutes=20)  # five fires passed while nothing ran

    assert await fire(stack, back) == fired
    assert await fire(stack, back + timedelta(seconds=5)) == 0  # never a burst

    assert await next_run(stack, task_id) == due + timedelta(hours=6)
    assert len(await executions(stack)) == fired


async def test_a_fire_that_cannot_run_is_logged_and_waits_for_the_next_time(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    task_id = await create(  # a node deleted since: no node to run on
        client, admin_headers, cron_expr="* * * * *", target_type="node", target_value=["999999"]
    )
    due = await next_run(stack, task_id)
    assert due is not None
    other = await create(client, admin_headers, name="fleet", cron_expr="* * * * *")
    await f.add_node(stack, "web-2", status="online")
    both_due = max(due, await next_run(stack, other) or due)

    assert await fire(stack, both_due) == 1  # the other task still fires

    assert await next_run(stack, task_id) == both_due + timedelta(minutes=1)
    assert {r.task_id for r in await executions(stack)} == {other}


async def test_replicas_racing_for_one_fire_make_one_execution(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1", status="online")
    task_id = await create(client, admin_headers, cron_expr="* * * * *")
    due = await next_run(stack, task_id)
    assert due is not None
    # SQLite has one writer, so the passes cannot overlap. On MariaDB the lock wait does not
    # show reliably in information_schema, so there too the passes are run one after another
    # (the claim is the same UPDATE); PostgreSQL shows the second pass waiting on the first.
    if stack.backend != "postgres":
        assert [await fire(stack, due), await fire(stack, due)] == [1, 0]
        assert len(await executions(stack)) == 1
        return

    async with transaction(stack.runtime.sessions) as first:
        assert await service.fire_due(
            first, stack.runtime.command_bus, lambda: stack.runtime.task_key,
            stack.settings.task, due,
        ) == 1  # fmt: skip
        # the second replica finds the task due and waits on the row the first has moved
        second = asyncio.create_task(fire(stack, due))
        await wait_until(lambda: _waiting_for_a_lock(stack), what="the second pass waits")
    assert await second == 0
    assert len(await executions(stack)) == 1
    assert await next_run(stack, task_id) == due + timedelta(minutes=1)


async def _waiting_for_a_lock(stack: Stack) -> bool:
    """A session of this test's database waits for a row lock (other checkouts' databases
    share the server)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = :name"
    )
    async with stack.runtime.engine.connect() as conn:
        return bool(await conn.scalar(sa.text(query), {"name": stack.settings.database.name}))


async def test_the_job_fires_due_tasks_through_the_runner(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1", status="online")
    task_id = await create(client, admin_headers, cron_expr="* * * * *")
    async with stack.runtime.engine.begin() as conn:  # due a moment ago
        due = utcnow().replace(second=0)
        await conn.execute(sa.update(Task).where(Task.id == task_id).values(next_run_at=due))
    job = all_jobs()["task.fire_schedules"]
    runner = JobRunner(
        stack.runtime.sessions, stack.settings, {job.name: job}, "test", stack.runtime.command_bus
    )

    assert await runner.run_once(job, datetime(2001, 1, 1))

    [row] = await executions(stack)
    assert row.triggered_by == "schedule"
    later = await next_run(stack, task_id)
    assert later is not None
    assert later > due


async def test_a_pass_reads_the_due_tasks_with_one_query_however_many_are_scheduled(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1", status="online")
    now = utcnow()
    later = now + timedelta(hours=1)
    rows = [
        {
            "name": f"t{i}",
            "type": "custom",
            "content": {"handler": "system.info", "params": {}},
            "cron_expr": "0 * * * *",
            "target_type": "all",
            "target_value": [],
            "status": "enabled",
            "created_by": 1,
            "next_run_at": later,  # scheduled, not due
        }
        for i in range(300)
    ]
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(Task), rows)

    with f.counting_statements(stack) as idle:
        assert await fire(stack, now) == 0
    task_id = await create(client, admin_headers, cron_expr="* * * * *")
    due = await next_run(stack, task_id)
    assert due is not None
    with f.counting_statements(stack) as busy:
        assert await fire(stack, due) == 1

    reads = [s for s in idle if "FROM tasks" in s]
    assert len(reads) == 1, idle  # one range read of the next_run_at index, not 300
    assert sum("FROM tasks" in s and "next_run_at <=" in s for s in busy) == 1
