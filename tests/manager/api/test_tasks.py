"""Tasks over REST: definitions checked by type, RBAC, executions written in batches with a
signed envelope per node in the outbox, history, output, cancel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.app import all_jobs
from opscaffold.manager.jobs.runner import JobRunner
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import AuditLog, NodeCommand, TaskExecution
from opscaffold.manager.task import service
from opscaffold.protocol import task as protocol
from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user

pytestmark = pytest.mark.timeout(60)
TASKS = "/api/v1/tasks"


def script_task(**fields: Any) -> dict[str, Any]:
    return {
        "name": "uptime",
        "type": "script",
        "content": {
            "interpreter": "/bin/sh",
            "script": "uptime",
            "env": {"TOKEN": {"value": "s3cret", "secret": True}, "MODE": {"value": "fast"}},
        },
        "timeout": 30,
        "target_type": "all",
        **fields,
    }


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> int:
    response = await client.post(TASKS, json=script_task(**fields), headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def test_a_task_is_created_read_listed_updated_and_deleted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    task_id = await create(client, admin_headers, cron_expr="*/5 * * * *")
    await create(
        client,
        admin_headers,
        name="other",
        type="service",
        content={"name": "nginx", "action": "restart"},
    )

    read = (await client.get(f"{TASKS}/{task_id}", headers=admin_headers)).json()["data"]
    assert read["name"] == "uptime"
    assert read["cron_expr"] == "*/5 * * * *"
    assert read["content"]["env"]["TOKEN"]["value"] == protocol.MASK  # secrets never read back
    assert read["content"]["env"]["MODE"]["value"] == "fast"
    listed = (await client.get(f"{TASKS}?type=service", headers=admin_headers)).json()["data"]
    assert [t["name"] for t in listed["items"]] == ["other"]
    assert listed["total"] == 1
    named = (await client.get(f"{TASKS}?name=upt", headers=admin_headers)).json()["data"]
    assert [t["id"] for t in named["items"]] == [task_id]

    response = await client.put(
        f"{TASKS}/{task_id}", json={"timeout": 60, "status": "disabled"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["timeout"] == 60
    assert response.json()["data"]["status"] == "disabled"

    response = await client.delete(f"{TASKS}/{task_id}", headers=admin_headers)
    assert response.status_code == 200
    assert (await client.get(f"{TASKS}/{task_id}", headers=admin_headers)).json()["code"] == 4001
    actions = await f.count_rows(stack, AuditLog, resource_type="task")
    assert actions == 4  # two creates, an update, a delete


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"content": {"interpreter": "/bin/sh"}}, "content.script"),
        ({"content": {"script": "x", "interpreter": "bash"}}, "content.interpreter"),
        ({"content": {"script": "x", "interpreter": "/usr/bin/env bash"}}, "content.interpreter"),
        ({"content": {"script": "x" * (1024 * 1024 + 1)}}, "content.script"),
        ({"content": {"script": "x", "args": ["a"] * 1001}}, "content.args"),
        ({"content": {"script": "x", "surprise": 1}}, "content.surprise"),
        ({"type": "file", "content": {"content": "x", "dest": "relative"}}, "content.dest"),
        ({"type": "service", "content": {"name": "nginx", "action": "reload"}}, "content.action"),
        ({"type": "custom", "content": {"handler": "Bad Name"}}, "content.handler"),
        ({"cron_expr": "* * * * * *"}, "cron_expr"),
        ({"cron_expr": "61 * * * *"}, "cron_expr"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 86_401}, "timeout"),
        ({"retry_count": 11}, "retry_count"),
        ({"name": "n" * 129}, "name"),
        ({"type": "shell"}, "type"),
        ({"target_type": "node", "target_value": []}, "target_value"),
        ({"target_type": "node", "target_value": ["web-1"]}, "target_value"),
    ],
)
async def test_bad_definitions_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    response = await client.post(TASKS, json=script_task(**fields), headers=admin_headers)

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 1001
    assert field in body["message"]


async def test_viewers_read_operators_execute_only_admins_delete(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1", status="online")
    task_id = await create(client, admin_headers)
    for role in ("viewer", "operator"):
        await make_user(client, admin_headers, role, role=role)
    viewer = bearer((await login(client, "viewer", "Str0ng-Password"))["token"])
    operator = bearer((await login(client, "operator", "Str0ng-Password"))["token"])

    assert (await client.get(TASKS, headers=viewer)).status_code == 200
    assert (await client.post(TASKS, json=script_task(), headers=viewer)).status_code == 403
    assert (await client.post(f"{TASKS}/{task_id}/execute", headers=viewer)).status_code == 403
    assert (await client.post(TASKS, json=script_task(), headers=operator)).status_code == 201
    executed = await client.post(f"{TASKS}/{task_id}/execute", headers=operator)
    assert executed.status_code == 200, executed.text
    assert (await client.delete(f"{TASKS}/{task_id}", headers=operator)).status_code == 403


async def test_executing_writes_a_row_and_a_signed_envelope_per_node_in_few_statements(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    nodes = [await f.add_node(stack, f"web-{i}", status="online") for i in range(30)]
    task_id = await create(client, admin_headers)

    with f.counting_statements(stack) as statements:
        response = await client.post(f"{TASKS}/{task_id}/execute", headers=admin_headers)

    assert response.status_code == 200, response.text
    result = response.json()["data"]
    assert result["total_nodes"] == 30
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) <= 4  # outbox, executions, audit: not one per node
    orders = await f.commands(stack, "task")
    assert [o["node_id"] for o in orders] == nodes
    public = stack.runtime.task_key.private.public_key()
    for order in orders:
        envelope = protocol.TaskOrder.model_validate(order["payload"]).envelope
        body = protocol.open_envelope(envelope, public)
        assert body.execution_id == result["execution_id"]
        assert body.node_id == order["node_id"]
        assert body.content["env"]["TOKEN"]["value"] == "s3cret"  # the node gets the secret
    async with stack.runtime.sessions() as session:
        rows = (await session.scalars(sa.select(TaskExecution))).all()
    assert {r.node_id for r in rows} == set(nodes)
    assert {r.status for r in rows} == {"pending"}
    assert {r.command_id for r in rows} == {o["id"] for o in orders}

    detail = (
        await client.get(f"/api/v1/executions/{result['execution_id']}", headers=admin_headers)
    ).json()["data"]
    assert detail["total"] == 30
    assert detail["counts"]["pending"] == 30
    assert detail["status"] == "running"
    assert detail["nodes"][0]["node_name"] == "web-0"
    history = (await client.get(f"{TASKS}/{task_id}/executions", headers=admin_headers)).json()[
        "data"
    ]
    assert [e["execution_id"] for e in history["items"]] == [result["execution_id"]]


async def test_target_nodes_override_and_unknown_nodes_are_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    first = await f.add_node(stack, "web-1")
    await f.add_node(stack, "web-2")
    task_id = await create(client, admin_headers)

    response = await client.post(
        f"{TASKS}/{task_id}/execute", json={"target_nodes": [first]}, headers=admin_headers
    )
    assert response.json()["data"]["total_nodes"] == 1
    missing = await client.post(
        f"{TASKS}/{task_id}/execute", json={"target_nodes": [999_999]}, headers=admin_headers
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == 2001


async def test_results_move_rows_once_and_cancel_stops_what_has_not_finished(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    nodes = [await f.add_node(stack, f"web-{i}", status="online") for i in range(3)]
    task_id = await create(client, admin_headers)
    execution_id = (await client.post(f"{TASKS}/{task_id}/execute", headers=admin_headers)).json()[
        "data"
    ]["execution_id"]

    def result(status: str, **extra: Any) -> protocol.TaskResult:
        fields = {
            "exit_code": None,
            "output": "",
            "truncated": False,
            "error": "",
            "started_at": 0,
            "finished_at": 0,
            **extra,
        }
        return service.result_of(execution_id, status, **fields)

    async with stack.runtime.sessions() as session, session.begin():
        assert await service.record_result(session, nodes[0], result("running"), utcnow())
        done = result("success", exit_code=0, output="up 3 days\n")
        assert await service.record_result(session, nodes[0], done, utcnow())
        assert not await service.record_result(session, nodes[0], done, utcnow())  # resent
        assert await service.record_result(session, nodes[1], result("running"), utcnow())

    output = (
        await client.get(
            f"/api/v1/executions/{execution_id}/nodes/{nodes[0]}/output", headers=admin_headers
        )
    ).json()["data"]
    assert output["output"] == "up 3 days\n"
    assert output["exit_code"] == 0

    response = await client.post(f"/api/v1/executions/{execution_id}/cancel", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"execution_id": execution_id, "cancelled": 1, "signalled": 1}
    cancels = await f.commands(stack, "task_cancel")
    assert [c["node_id"] for c in cancels] == [nodes[1]]
    async with stack.runtime.sessions() as session:
        states = dict(
            (await session.execute(sa.select(TaskExecution.node_id, TaskExecution.status))).all()
        )
        expired = await session.scalar(
            sa.select(sa.func.count())
            .select_from(NodeCommand)
            .where(NodeCommand.type == "task", NodeCommand.state == "expired")
        )
    assert states == {nodes[0]: "success", nodes[1]: "running", nodes[2]: "cancelled"}
    assert expired == 1  # the cancelled node's envelope will not be delivered

    async with stack.runtime.sessions() as session, session.begin():
        with pytest.raises(Exception, match="cannot become running"):
            await service.record_result(session, nodes[2], result("running"), utcnow())


async def test_a_task_with_executions_under_way_is_not_deleted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1")
    task_id = await create(client, admin_headers)
    await client.post(f"{TASKS}/{task_id}/execute", headers=admin_headers)

    response = await client.delete(f"{TASKS}/{task_id}", headers=admin_headers)

    assert response.status_code == 409
    assert response.json()["code"] == 4013


async def test_executions_past_their_deadline_time_out(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1")
    task_id = await create(client, admin_headers, timeout=5)
    await client.post(f"{TASKS}/{task_id}/execute", headers=admin_headers)
    async with stack.runtime.sessions() as session:
        deadline = await session.scalar(sa.select(TaskExecution.deadline_at))
    assert deadline is not None

    async with stack.runtime.sessions() as session, session.begin():
        early = await service.time_out_overdue(session, deadline, stack.settings.task.timeout_grace)
        late = await service.time_out_overdue(
            session,
            deadline + stack.settings.task.timeout_grace * 2,
            stack.settings.task.timeout_grace,
        )
    assert (early, late) == (0, 1)
    assert await f.count_rows(stack, TaskExecution, status="timeout") == 1


async def test_the_time_out_job_ends_executions_whose_node_went_silent(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    await f.add_node(stack, "web-1")
    await f.add_node(stack, "web-2")
    task_id = await create(client, admin_headers)
    await client.post(f"{TASKS}/{task_id}/execute", headers=admin_headers)
    silent = utcnow() - stack.settings.task.timeout_grace - timedelta(seconds=1)
    async with stack.runtime.engine.begin() as conn:
        first = int(await conn.scalar(sa.select(sa.func.min(TaskExecution.id))) or 0)
        await conn.execute(
            sa.update(TaskExecution)
            .where(TaskExecution.id == first)
            .values(status="running", deadline_at=silent)
        )
    job = all_jobs()["task.time_out"]
    runner = JobRunner(
        stack.runtime.sessions, stack.settings, {job.name: job}, "test", stack.runtime.command_bus
    )

    assert await runner.run_once(job, datetime(2001, 1, 1))

    async with stack.runtime.sessions() as session:
        states = dict(
            (await session.execute(sa.select(TaskExecution.id, TaskExecution.status))).all()
        )
    assert sorted(states.values()) == ["pending", "timeout"]
    assert states[first] == "timeout"


async def test_an_execution_whose_envelopes_would_flood_the_outbox_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    for i in range(3):
        await f.add_node(stack, f"web-{i}")
    big = {"script": "x" * 1024 * 1024}
    task_id = await create(client, admin_headers, content=big)
    limit = stack.settings.task.max_dispatch_bytes
    stack.settings.task.max_dispatch_bytes = 2 * 1024 * 1024
    try:
        response = await client.post(f"{TASKS}/{task_id}/execute", headers=admin_headers)
    finally:
        stack.settings.task.max_dispatch_bytes = limit

    assert response.status_code == 400, response.text
    assert "task.max_dispatch_bytes" in response.json()["message"]
    assert await f.count_rows(stack, TaskExecution) == 0


async def test_a_content_written_back_as_read_keeps_its_secrets(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    task_id = await create(client, admin_headers)
    read = (await client.get(f"{TASKS}/{task_id}", headers=admin_headers)).json()["data"]
    content = read["content"] | {"script": "uptime; date"}
    content["env"]["MODE"] = {"value": "slow", "secret": False}

    response = await client.put(
        f"{TASKS}/{task_id}", json={"content": content}, headers=admin_headers
    )

    assert response.status_code == 200, response.text
    async with stack.runtime.sessions() as session:
        stored = (await service.get(session, task_id)).content
    assert stored["script"] == "uptime; date"
    assert stored["env"]["TOKEN"] == {"value": "s3cret", "secret": True}
    assert stored["env"]["MODE"] == {"value": "slow", "secret": False}
