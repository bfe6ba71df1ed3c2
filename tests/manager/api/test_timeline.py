"""A node's timeline (`GET /nodes/:id/timeline`): its status changes, alerts, updates and task
runs in one time order, within a range, newest kept when there are too many."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Alert, AlertRule, Task, TaskExecution, UpdateRecord
from tests.manager import factories as f
from tests.manager.conftest import Stack

NOW = utcnow().replace(microsecond=0)


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def rfc3339(at: datetime) -> str:
    return at.isoformat() + "Z"


async def insert(stack: Stack, model: Any, **row: Any) -> int:
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(sa.insert(model).values(**row))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


async def story(stack: Stack, node_id: int) -> None:
    """Registered 10 h ago; offline and back; a CPU alert; an update; two task runs. Plus an
    other node's events, which never show."""
    other = await f.add_node(stack, "other")
    await f.add_event(stack, node_id, "online", ago(600))
    await f.add_event(stack, node_id, "offline", ago(300))
    await f.add_event(stack, node_id, "online", ago(290))
    await f.add_event(stack, other, "offline", ago(100))
    rule = await insert(
        stack, AlertRule, name="cpu high", metric="cpu_usage", operator="gt", threshold=90,
        created_by=1,
    )  # fmt: skip
    alert = {"rule_id": rule, "metric": "cpu_usage", "current_value": 97.5, "threshold": 90}
    await insert(stack, Alert, node_id=node_id, severity="critical", status="resolved",
                 fired_at=ago(200), resolved_at=ago(180), **alert)  # fmt: skip
    await insert(stack, Alert, node_id=other, severity="critical", status="firing",
                 fired_at=ago(100), **alert)  # fmt: skip
    await insert(
        stack, UpdateRecord, batch_id="b-1", node_id=node_id, component="agent",
        from_version="1.0.0", to_version="2.0.0", status="success", progress=100,
        created_by=1, created_at=ago(120), finished_at=ago(118),
    )  # fmt: skip
    task = await insert(
        stack, Task, name="rotate logs", type="script", content={"script": "true"},
        target_type="node", created_by=1,
    )  # fmt: skip
    for minutes, status, code in ((60, "success", 0), (30, "failed", 3)):
        await insert(
            stack, TaskExecution, task_id=task, execution_id=f"e-{minutes}", node_id=node_id,
            status=status, exit_code=code, created_at=ago(minutes), finished_at=ago(minutes - 1),
        )  # fmt: skip


async def test_the_nodes_story_in_time_order(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "web-1")
    await story(stack, node_id)

    response = await client.get(f"/api/v1/nodes/{node_id}/timeline", headers=admin_headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    events = data["events"]
    assert [(e["kind"], e["at"]) for e in events] == [
        ("status", rfc3339(ago(600))),
        ("status", rfc3339(ago(300))),
        ("status", rfc3339(ago(290))),
        ("alert", rfc3339(ago(200))),
        ("update", rfc3339(ago(120))),
        ("task", rfc3339(ago(60))),
        ("task", rfc3339(ago(30))),
    ]
    assert events[1]["to_status"] == "offline"
    assert (events[3]["rule_name"], events[3]["resolved_at"]) == ("cpu high", rfc3339(ago(180)))
    assert (events[4]["to_version"], events[4]["status"]) == ("2.0.0", "success")
    assert (events[6]["task_name"], events[6]["exit_code"], events[6]["status"]) == (
        "rotate logs",
        3,
        "failed",
    )
    assert data["truncated"] is False


async def test_a_range_and_a_limit(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "web-1")
    await story(stack, node_id)
    url = f"/api/v1/nodes/{node_id}/timeline"

    # An alert that fired before the range and resolved within it is part of the range.
    window = {"start": rfc3339(ago(190)), "end": rfc3339(ago(45))}
    inside = (await client.get(url, params=window, headers=admin_headers)).json()["data"]
    assert [e["kind"] for e in inside["events"]] == ["alert", "update", "task"]

    newest = (await client.get(url, params={"limit": 2}, headers=admin_headers)).json()["data"]
    assert [e["at"] for e in newest["events"]] == [rfc3339(ago(60)), rfc3339(ago(30))]
    assert newest["truncated"] is True


async def test_bad_requests(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    url = f"/api/v1/nodes/{await f.add_node(stack, 'web-1')}/timeline"
    missing = await client.get("/api/v1/nodes/999999/timeline", headers=admin_headers)
    assert (missing.status_code, missing.json()["code"]) == (404, 2001)
    backwards = {"start": rfc3339(ago(10)), "end": rfc3339(ago(20))}
    response = await client.get(url, params=backwards, headers=admin_headers)
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    too_long = {"start": rfc3339(ago(60 * 24 * 40))}
    response = await client.get(url, params=too_long, headers=admin_headers)
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    too_many = await client.get(url, params={"limit": 5000}, headers=admin_headers)
    assert (too_many.status_code, too_many.json()["code"]) == (400, 1001)
