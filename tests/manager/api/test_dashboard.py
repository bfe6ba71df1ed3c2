"""The dashboard (`GET /system/dashboard`): every figure equals what the tables hold."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import sqlalchemy as sa

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Agent, Alert, AlertRule, Node
from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user
from tests.manager.test_metric_rollups import a_complete_bucket, queue, roll_up

DASHBOARD = "/api/v1/system/dashboard"


async def add_rule(stack: Stack, name: str) -> int:
    row = {"name": name, "metric": "cpu_usage", "operator": "gt", "threshold": 90, "created_by": 1}
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(sa.insert(AlertRule).values(**row))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


async def add_alerts(stack: Stack, rows: list[dict[str, object]]) -> None:
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(Alert), rows)


async def seed(stack: Stack) -> None:
    """Nodes in every status, agents running or not on online and offline nodes, several
    versions (and none), alerts firing and resolved of each severity."""
    statuses = ["online"] * 5 + ["offline"] * 3 + ["unknown"] * 2
    daemon_versions = ["2.0.0", "2.0.0", "1.9.0", None, "2.0.0"]
    nodes = [
        await f.add_node(stack, f"n{i}", status=status, daemon_version=daemon_versions[i % 5])
        for i, status in enumerate(statuses)
    ]
    agents = [("running", "1.2.0"), ("running", "1.3.0"), ("stopped", "1.2.0"), ("error", None)]
    for i, node_id in enumerate(nodes[:8]):  # online and offline nodes; the unknown have none
        status, version = agents[i % 4]
        await f.add_agent(stack, node_id, status=status, version=version)
    cpu, disk = await add_rule(stack, "cpu high"), await add_rule(stack, "disk full")
    now = utcnow().replace(microsecond=0)
    alerts = []
    for i, (status, severity) in enumerate(
        [("firing", "critical"), ("firing", "warning"), ("firing", "warning"),
         ("resolved", "critical"), ("firing", "info"), ("resolved", "info")] * 3
    ):  # fmt: skip
        alerts.append(
            {
                "rule_id": (cpu, disk)[i % 2],
                "node_id": nodes[i % len(nodes)],
                "metric": "cpu_usage",
                "current_value": 95.5,
                "threshold": 90,
                "severity": severity,
                "status": status,
                "fired_at": now - timedelta(minutes=i),
                "resolved_at": now if status == "resolved" else None,
                "acknowledged_at": now if i % 4 == 0 else None,
            }
        )
    await add_alerts(stack, alerts)
    bucket = a_complete_bucket()  # two nodes report in one bucket, rolled up as the job does
    rows = await f.add_metrics(stack, nodes[0], bucket, timedelta(seconds=60), 3)
    rows += await f.add_metrics(stack, nodes[1], bucket, timedelta(seconds=60), 2, offset=5)
    await queue(stack, rows)
    await roll_up(stack, utcnow())


async def test_the_dashboard_counts_what_the_tables_hold(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await seed(stack)
    async with stack.runtime.sessions() as session:
        nodes = (await session.scalars(sa.select(Node))).all()
        agents = (await session.scalars(sa.select(Agent))).all()
        alerts = (await session.scalars(sa.select(Alert))).all()
        rules = {r.id: r.name for r in (await session.scalars(sa.select(AlertRule))).all()}

    response = await client.get(DASHBOARD, headers=admin_headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    online = {n.id for n in nodes if n.status == "online"}
    assert (data["total_nodes"], data["online_nodes"], data["offline_nodes"]) == (
        len(nodes),
        len(online),
        len(nodes) - len(online),
    )
    assert data["running_agents"] == sum(
        a.status == "running" and a.node_id in online for a in agents
    )
    firing = Counter(a.severity for a in alerts if a.status == "firing")
    assert data["active_alerts"] == sum(firing.values())
    assert data["active_alerts_by_severity"] == {
        s: firing[s] for s in ("critical", "warning", "info")
    }
    statuses = Counter(n.status for n in nodes)
    assert {s["value"]: s["count"] for s in data["node_status_distribution"]} == {
        s: statuses[s] for s in ("online", "offline", "unknown")
    }
    running_versions = Counter(a.version or "unknown" for a in agents if a.node_id in online)
    assert {s["value"]: s["count"] for s in data["agent_version_distribution"]} == running_versions
    daemons = Counter(n.daemon_version or "unknown" for n in nodes)
    assert {s["value"]: s["count"] for s in data["daemon_version_distribution"]} == daemons
    counts = [s["count"] for s in data["daemon_version_distribution"]]
    assert counts == sorted(counts, reverse=True)  # the biggest slice first

    newest = sorted(alerts, key=lambda a: (a.fired_at, a.id), reverse=True)[:10]
    names = {n.id: n.hostname for n in nodes}
    assert [
        (a["id"], a["rule_name"], a["node_name"], a["status"], a["acknowledged"])
        for a in data["recent_alerts"]
    ] == [
        (a.id, rules[a.rule_id], names[a.node_id], a.status, a.acknowledged_at is not None)
        for a in newest
    ]
    trend = await client.get("/api/v1/metrics/trend", headers=admin_headers)
    assert data["resource_trend"] == trend.json()["data"]
    assert [(p["nodes"], p["samples"]) for p in data["resource_trend"] if p["samples"]] == [(2, 5)]


async def test_an_empty_fleet_is_all_zeros(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    data = (await client.get(DASHBOARD, headers=admin_headers)).json()["data"]
    assert (data["total_nodes"], data["running_agents"], data["active_alerts"]) == (0, 0, 0)
    assert data["agent_version_distribution"] == data["recent_alerts"] == []
    assert [s["count"] for s in data["node_status_distribution"]] == [0, 0, 0]


async def test_every_role_reads_the_dashboard(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_user(client, admin_headers, "watcher", role="viewer")
    viewer = bearer((await login(client, "watcher", "Str0ng-Password"))["token"])
    assert (await client.get(DASHBOARD, headers=viewer)).status_code == 200
    assert (await client.get(DASHBOARD)).status_code == 401
