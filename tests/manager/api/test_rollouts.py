"""Deploying versions over REST: the plan (dry run), eligibility, the rows a deploy writes,
the first wave's orders, listing, status, pause, resume and cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.models import AuditLog, Node, NodeCommand, Rollout, UpdateRecord
from opscaffold.protocol.update import UpdateOrder
from tests.manager import factories as f
from tests.manager.api.test_versions import upload
from tests.manager.conftest import Stack, bearer, login, make_user

DEPLOY = "/api/v1/updates/deploy"
UPDATES = "/api/v1/updates"


async def daemon_version(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await upload(client, headers, "2.0.0")
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def fleet(stack: Stack, online: int, **extra: Any) -> list[int]:
    return [
        await f.add_node(stack, f"web-{i}", status="online", daemon_version="1.0.0", **extra)
        for i in range(online)
    ]


def request(version_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "component": "daemon",
        "version_id": version_id,
        "target_type": "all",
        "strategy": "canary",
        "batch_size": 2,
        "canary_size": 1,
        **fields,
    }


async def rows(stack: Stack, table: Any) -> list[Any]:
    async with stack.runtime.sessions() as session:
        return list((await session.scalars(sa.select(table))).all())


async def test_a_dry_run_plans_waves_and_reasons_and_starts_nothing(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    online = await fleet(stack, 4)
    offline = await f.add_node(stack, "sleepy", status="offline", daemon_version="1.0.0")
    arm = await f.add_node(stack, "arm-1", status="online", arch="arm64")
    done = await f.add_node(stack, "done-1", status="online", daemon_version="2.0.0")

    response = await client.post(
        DEPLOY, json=request(version_id, dry_run=True), headers=admin_headers
    )

    assert response.status_code == 200, response.text
    plan = response.json()["data"]
    assert plan["batch_id"] is None
    assert plan["dry_run"] is True
    assert plan["total_nodes"] == 5
    waves = [[(n["id"], n["offline"]) for n in wave] for wave in plan["batches"]]
    # canary first (online nodes before offline ones), then waves of batch_size
    assert waves == [
        [(online[0], False)],
        [(online[1], False), (online[2], False)],
        [(online[3], False), (offline, True)],
    ]
    reasons = {n["id"]: n["reason"] for n in plan["ineligible"]}
    assert set(reasons) == {arm, done}
    assert reasons[arm].startswith("platform: runs linux/arm64")
    assert reasons[done] == "version: already runs daemon 2.0.0"
    assert await rows(stack, Rollout) == []
    assert await rows(stack, UpdateRecord) == []
    assert await rows(stack, NodeCommand) == []


async def test_each_record_of_a_wave_names_the_command_that_carries_its_order(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    nodes = await fleet(stack, 5)

    body = request(version_id, strategy="rolling", batch_size=4)
    response = await client.post(DEPLOY, json=body, headers=admin_headers)

    assert response.status_code == 200, response.text
    records = {r.node_id: r for r in await rows(stack, UpdateRecord)}
    commands = {c.id: c for c in await rows(stack, NodeCommand)}
    assert len(commands) == 4
    for node in nodes[:4]:
        command = commands[records[node].command_id]
        assert command.node_id == node
        assert UpdateOrder.model_validate(command.payload).record_id == records[node].id
    assert records[nodes[4]].command_id is None  # the next wave's order is not sent yet


async def test_a_deploy_records_the_rollout_and_sends_the_first_wave_only(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    nodes = await fleet(stack, 3)

    response = await client.post(DEPLOY, json=request(version_id), headers=admin_headers)

    assert response.status_code == 200, response.text
    batch_id = response.json()["data"]["batch_id"]
    [rollout] = await rows(stack, Rollout)
    assert (rollout.batch_id, rollout.status, rollout.current_wave, rollout.total_waves) == (
        batch_id,
        "running",
        1,
        2,
    )
    records = {r.node_id: r for r in await rows(stack, UpdateRecord)}
    assert {n: (r.wave, r.from_version, r.to_version) for n, r in records.items()} == {
        nodes[0]: (1, "1.0.0", "2.0.0"),
        nodes[1]: (2, "1.0.0", "2.0.0"),
        nodes[2]: (2, "1.0.0", "2.0.0"),
    }
    [command] = await rows(stack, NodeCommand)
    assert (command.node_id, command.type, command.state) == (nodes[0], "update", "pending")
    assert records[nodes[0]].command_id == command.id
    order = UpdateOrder.model_validate(command.payload)
    assert order.record_id == records[nodes[0]].id
    assert order.download_url == f"http://127.0.0.1:8080/api/v1/versions/{version_id}/download"
    assert (order.manifest.version, order.rollback) == ("2.0.0", False)
    version = (await client.get(f"/api/v1/versions/{version_id}", headers=admin_headers)).json()
    assert order.signature == version["data"]["signature"]
    async with stack.runtime.sessions() as session:
        audit = (
            await session.scalars(sa.select(AuditLog).where(AuditLog.action == "rollout.deploy"))
        ).one()
    assert (audit.resource_id, audit.status) == (batch_id, "success")


async def test_a_node_held_by_a_running_rollout_waits_for_it(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    [first, second] = await fleet(stack, 2)
    one = {"target_type": "node", "target_value": [str(first)]}
    started = await client.post(DEPLOY, json=request(version_id, **one), headers=admin_headers)
    batch_id = started.json()["data"]["batch_id"]

    again = await client.post(DEPLOY, json=request(version_id, dry_run=True), headers=admin_headers)

    plan = again.json()["data"]
    assert [[n["id"] for n in wave] for wave in plan["batches"]] == [[second]]
    assert plan["ineligible"] == [
        {"id": first, "name": "web-0", "reason": f"busy: held by the running rollout {batch_id}"}
    ]
    refused = await client.post(DEPLOY, json=request(version_id, **one), headers=admin_headers)
    assert refused.status_code == 400
    assert refused.json()["code"] == 3014
    assert "busy" in refused.json()["message"]


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        ({"arch": "arm64"}, "platform: runs linux/arm64, the package is for linux/amd64"),
        ({"os": None, "arch": None}, "platform: runs ?/?"),
        ({"daemon_version": "2.0.0"}, "version: already runs daemon 2.0.0"),
    ],
)
async def test_a_deploy_no_node_can_take_is_refused_naming_why(
    stack: Stack,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    nodes: dict[str, Any],
    problem: str,
) -> None:
    version_id = await daemon_version(client, admin_headers)
    for i in range(2):
        await f.add_node(stack, f"n{i}", **({"daemon_version": "1.0.0"} | nodes))
    for dry_run in (True, False):
        response = await client.post(
            DEPLOY, json=request(version_id, dry_run=dry_run), headers=admin_headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 3014
        assert problem in response.json()["message"]
    assert await rows(stack, Rollout) == []


async def test_bad_deploys_are_refused_naming_the_field(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    await fleet(stack, 1)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"component": "agent"}, 1001, "version_id"),
        ({"version_id": 999_999}, 3001, "version 999999"),
        ({"strategy": "bluegreen"}, 1001, "strategy"),
        ({"batch_size": 0}, 1001, "batch_size"),
        ({"max_failures": -1}, 1001, "max_failures"),
        ({"expires_in_seconds": 0}, 1001, "expires_in_seconds"),
        ({"target_type": "group", "target_value": []}, 1001, "target_value"),
        ({"target_type": "node", "target_value": ["abc"]}, 1001, "target"),
        ({"target_type": "node", "target_value": ["999999"]}, 2001, "999999"),
    ]
    for fields, code, named in cases:
        response = await client.post(
            DEPLOY, json=request(version_id) | fields, headers=admin_headers
        )
        assert response.json()["code"] == code, (fields, response.text)
        assert named in response.text, (fields, response.text)
    assert await rows(stack, Rollout) == []


async def test_operators_deploy_and_viewers_read(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    await fleet(stack, 3)
    headers = {}
    for role in ("operator", "viewer"):
        await make_user(client, admin_headers, role, role=role)
        headers[role] = bearer((await login(client, role, "Str0ng-Password"))["token"])
    refused = await client.post(DEPLOY, json=request(version_id), headers=headers["viewer"])
    assert refused.status_code == 403
    started = await client.post(DEPLOY, json=request(version_id), headers=headers["operator"])
    assert started.status_code == 200, started.text
    batch_id = started.json()["data"]["batch_id"]

    listed = await client.get(UPDATES, headers=headers["viewer"])
    assert listed.status_code == 200
    [item] = listed.json()["data"]["items"]
    assert (item["batch_id"], item["status"], item["strategy"]) == (batch_id, "running", "canary")
    assert item["counts"]["pending"] == 3
    assert item["counts"]["success"] == 0
    status = await client.get(f"{UPDATES}/{batch_id}/status", headers=headers["viewer"])
    data = status.json()["data"]
    assert (data["total"], data["pending"], data["success"], data["failed"]) == (3, 3, 0, 0)
    assert [r["node_name"] for r in data["records"]] == ["web-0", "web-1", "web-2"]
    assert [r["wave"] for r in data["records"]] == [1, 2, 2]
    for action in ("pause", "resume", "cancel"):
        denied = await client.post(f"{UPDATES}/{batch_id}/{action}", headers=headers["viewer"])
        assert denied.status_code == 403


async def test_status_pages_and_filters_records_while_counting_the_whole_rollout(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    await fleet(stack, 5)
    started = await client.post(
        DEPLOY, json=request(version_id) | {"strategy": "all"}, headers=admin_headers
    )
    batch_id = started.json()["data"]["batch_id"]
    async with stack.runtime.sessions() as session, session.begin():
        ids = await session.scalars(
            sa.select(UpdateRecord.id)
            .where(UpdateRecord.batch_id == batch_id)
            .order_by(UpdateRecord.wave, UpdateRecord.id)
        )
        listed = list(ids)
        await session.execute(
            sa.update(UpdateRecord)
            .where(UpdateRecord.id.in_([listed[0], listed[3]]))
            .values(status="failed", error_message="disk full")
        )

    async def status(**query: Any) -> dict[str, Any]:
        response = await client.get(
            f"{UPDATES}/{batch_id}/status", params=query, headers=admin_headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    whole = await status()
    assert (whole["total"], whole["failed"], whole["pending"]) == (5, 2, 3)
    assert whole["records_total"] == 5
    assert [r["node_name"] for r in whole["records"]] == [f"web-{i}" for i in range(5)]
    second = await status(page=2, page_size=2)
    assert [r["node_name"] for r in second["records"]] == ["web-2", "web-3"]
    assert (second["total"], second["records_total"]) == (5, 5)
    failed = await status(record_status="failed", page_size=1)
    assert [r["node_name"] for r in failed["records"]] == ["web-0"]
    assert (failed["total"], failed["failed"], failed["records_total"]) == (5, 2, 2)
    for query in ({"record_status": "exploded"}, {"page": 0}, {"page_size": 101}):
        bad = await client.get(f"{UPDATES}/{batch_id}/status", params=query, headers=admin_headers)
        assert (bad.status_code, bad.json()["code"]) == (400, 1001), query
        assert next(iter(query)) in bad.text, query


async def test_pause_resume_and_cancel_move_only_as_allowed(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    await fleet(stack, 3)
    started = await client.post(DEPLOY, json=request(version_id), headers=admin_headers)
    batch_id = started.json()["data"]["batch_id"]

    async def act(action: str) -> httpx.Response:
        return await client.post(f"{UPDATES}/{batch_id}/{action}", headers=admin_headers)

    assert (await act("resume")).status_code == 409
    paused = await act("pause")
    assert paused.json()["data"]["status"] == "paused"
    assert (await act("pause")).json()["code"] == 3015
    assert (await act("resume")).json()["data"]["status"] == "running"
    cancelled = await act("cancel")
    assert cancelled.json()["data"]["status"] == "cancelled"
    for action in ("pause", "resume", "cancel"):
        assert (await act(action)).status_code == 409
    records = await rows(stack, UpdateRecord)
    assert {(r.status, r.error_message) for r in records} == {("failed", "cancelled")}
    assert {c.state for c in await rows(stack, NodeCommand)} == {"expired"}
    missing = await client.post(
        f"{UPDATES}/{'0' * 8}-0000-0000-0000-{'0' * 12}/pause", headers=admin_headers
    )
    assert (missing.status_code, missing.json()["code"]) == (404, 3013)
    async with stack.runtime.sessions() as session:
        actions = (
            await session.scalars(
                sa.select(AuditLog.action).where(AuditLog.resource_type == "rollout")
            )
        ).all()
    assert {"rollout.deploy", "rollout.pause", "rollout.resume", "rollout.cancel"} <= set(actions)


async def test_a_deploy_to_more_nodes_than_one_statement_can_name(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    count = 33_000  # beyond the 32,767 parameters a driver binds to one statement
    rows = [f.node_row(f"n{i}", status="online", daemon_version="1.0.0") for i in range(count)]
    async with stack.runtime.engine.begin() as conn:
        for start in range(0, count, 2000):
            await conn.execute(sa.insert(Node), rows[start : start + 2000])

    response = await client.post(
        DEPLOY, json=request(version_id, strategy="all"), headers=admin_headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["total_nodes"] == count
    assert await f.count_rows(stack, UpdateRecord, wave=1) == count
    assert await f.count_rows(stack, NodeCommand, type="update") == count


async def test_deploys_racing_for_the_same_nodes_take_each_node_once(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    version_id = await daemon_version(client, admin_headers)
    await fleet(stack, 2)
    body = request(version_id, strategy="all")

    answers = await asyncio.gather(
        *(client.post(DEPLOY, json=body, headers=admin_headers) for _ in range(4))
    )

    codes = sorted(answer.json()["code"] for answer in answers)
    assert codes == [0, 3014, 3014, 3014], [a.text for a in answers]
    assert len(await rows(stack, Rollout)) == 1
    assert await f.count_rows(stack, UpdateRecord) == 2


async def test_an_agent_rollout_compares_the_agents_version(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    uploaded = await upload(client, admin_headers, "2.0.0", component="agent")
    assert uploaded.status_code == 201, uploaded.text
    old, current, bare = await fleet(stack, 3)  # daemons on 1.0.0 everywhere
    await f.add_agent(stack, old, version="1.5.0")
    await f.add_agent(stack, current, version="2.0.0")
    body = request(uploaded.json()["data"]["id"], component="agent", strategy="all")

    response = await client.post(DEPLOY, json=body, headers=admin_headers)

    assert response.status_code == 200, response.text
    plan = response.json()["data"]
    assert [[n["id"] for n in wave] for wave in plan["batches"]] == [[old, bare]]
    assert plan["ineligible"] == [
        {"id": current, "name": "web-1", "reason": "version: already runs agent 2.0.0"}
    ]
    records = {r.node_id: r.from_version for r in await rows(stack, UpdateRecord)}
    assert records == {old: "1.5.0", bare: None}
