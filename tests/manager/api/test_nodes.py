"""Nodes through the REST API: the list and its filters, one node, its history and removal."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

import httpx
import pytest

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import (
    Agent,
    NodeCommand,
    NodeConfig,
    NodeCredential,
    NodeEvent,
    NodeLabel,
    NodeMetric,
    NodeMetricLatest,
    NodeTag,
)
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS
from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user

NODES = "/api/v1/nodes"
GROUPS = "/api/v1/groups"
AUDIT = "/api/v1/system/audit-logs"
PERCENTS = {"cpu_usage", "memory_usage", "disk_usage", "load_avg_1", "load_avg_5", "load_avg_15"}


async def _ids(client: httpx.AsyncClient, headers: dict[str, str], params: Any = None) -> list[int]:
    response = await client.get(NODES, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]["items"]]


async def _as(client: httpx.AsyncClient, admin: dict[str, str], role: str) -> dict[str, str]:
    await make_user(client, admin, f"{role}-user", role=role)
    return bearer((await login(client, f"{role}-user", "Str0ng-Password"))["token"])


@pytest.fixture
async def fleet(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> dict[str, int]:
    """prod > web > edge, and dev; five nodes spread over them (one in no group)."""
    prod = await f.add_group(stack, "prod")
    web = await f.add_group(stack, "web", prod)
    edge = await f.add_group(stack, "edge", web)
    dev = await f.add_group(stack, "dev")
    now = utcnow()
    ids = {
        "web-01": await f.add_node(
            stack,
            "web-01",
            ip="10.0.0.1",
            status="online",
            group_id=web,
            last_heartbeat=now - timedelta(seconds=5),
            tags=["web", "prod"],
            labels={"env": "prod", "tier": "frontend"},
        ),
        "web-02": await f.add_node(
            stack,
            "web-02",
            ip="10.0.0.2",
            status="offline",
            group_id=edge,
            last_heartbeat=now - timedelta(hours=2),
            tags=["web"],
            labels={"env": "prod"},
        ),
        "db-01": await f.add_node(
            stack,
            "db-01",
            ip="10.0.1.1",
            status="online",
            group_id=prod,
            last_heartbeat=now - timedelta(seconds=1),
            tags=["db", "prod"],
            labels={"env": "prod", "tier": "backend"},
        ),
        "DEV-box": await f.add_node(
            stack, "DEV-box", ip="192.168.1.10", group_id=dev, labels={"env": "dev"}
        ),
        "lonely_1": await f.add_node(stack, "lonely_1", ip="172.16.0.1"),
    }
    return ids | {"g:prod": prod, "g:web": web, "g:edge": edge, "g:dev": dev}


# -- the list -----------------------------------------------------------------------------
async def test_list_items_carry_the_node_its_group_and_its_agent(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    group = await f.add_group(stack, "rack-1")
    node_id = await f.add_node(
        stack,
        "n1",
        ip="10.1.0.1",
        peer_ip="198.51.100.4",
        group_id=group,
        status="online",
        last_heartbeat=utcnow(),
        cpu_cores=8,
        memory_total=16 << 30,
        tags=["a", "b"],
        labels={"zone": "z1"},
    )
    await f.add_agent(stack, node_id, cpu_usage=1.5, start_time=utcnow())
    bare = await f.add_node(stack, "n2")

    body = (await client.get(NODES, headers=admin_headers)).json()
    assert body["code"] == 0
    assert body["data"]["total"] == 2
    first, second = body["data"]["items"]
    assert first["id"] == node_id
    assert first["group"] == {"id": group, "name": "rack-1"}
    assert first["tags"] == ["a", "b"]
    assert first["labels"] == {"zone": "z1"}
    assert first["peer_ip"] == "198.51.100.4"
    assert first["memory_total"] == 16 << 30
    assert first["last_heartbeat"].endswith("Z")
    assert first["created_at"].endswith("Z")
    assert first["agent"]["status"] == "running"
    assert first["agent"]["cpu_usage"] == 1.5
    assert first["agent"]["start_time"].endswith("Z")
    spec_fields = {
        "id", "uuid", "hostname", "ip", "port", "group_id", "os", "arch", "kernel_version",
        "daemon_version", "cpu_cores", "memory_total", "disk_total", "status", "last_heartbeat",
        "tags", "labels", "created_at", "updated_at", "peer_ip", "group", "agent",
    }  # fmt: skip
    assert set(first) == spec_fields
    assert second["id"] == bare
    assert second["group"] is None
    assert second["agent"] is None
    assert second["last_heartbeat"] is None


async def test_group_filter_includes_every_sub_group(
    client: httpx.AsyncClient, admin_headers: dict[str, str], fleet: dict[str, int]
) -> None:
    by = {name: fleet[name] for name in ("web-01", "web-02", "db-01", "DEV-box", "lonely_1")}
    cases = {
        "g:prod": ["web-01", "web-02", "db-01"],
        "g:web": ["web-01", "web-02"],
        "g:edge": ["web-02"],
        "g:dev": ["DEV-box"],
    }
    for group, expected in cases.items():
        ids = await _ids(client, admin_headers, {"group_id": fleet[group]})
        assert ids == sorted(by[n] for n in expected), group
    unknown = await client.get(NODES, params={"group_id": 999999}, headers=admin_headers)
    assert unknown.status_code == 404
    assert "group_id" in unknown.json()["message"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "online"}, ["web-01", "db-01"]),
        ({"status": "unknown"}, ["DEV-box", "lonely_1"]),
        ({"keyword": "web"}, ["web-01", "web-02"]),
        ({"keyword": "10.0.0"}, ["web-01", "web-02"]),
        ({"keyword": "dev"}, ["DEV-box"]),  # case does not matter, on every database
        ({"keyword": "WEB"}, ["web-01", "web-02"]),
        ({"keyword": "DB"}, ["db-01"]),  # could be hex in an address, too
        ({"keyword": "16.0"}, ["lonely_1"]),  # 172.16.0.1
        ({"keyword": "y_"}, ["lonely_1"]),  # LIKE wildcards are matched literally
        ({"keyword": "%"}, []),
        ({"tags": "web"}, ["web-01", "web-02"]),
        ({"tags": "web,prod"}, ["web-01"]),  # all of them
        ({"tags": " prod , db "}, ["db-01"]),
        ({"tags": "web,nope"}, []),
        ({"label": "env=prod"}, ["web-01", "web-02", "db-01"]),
        ({"label": ["env=prod", "tier=frontend"]}, ["web-01"]),  # all selectors
        ({"label": ["env=prod", "env=dev"]}, []),
        ({"label": "env=dev"}, ["DEV-box"]),
        ({"status": "online", "tags": "prod", "label": "tier=backend"}, ["db-01"]),
        ({"keyword": "web", "status": "offline", "label": "env=prod"}, ["web-02"]),
    ],
)
async def test_filters(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    fleet: dict[str, int],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    assert await _ids(client, admin_headers, params) == sorted(fleet[n] for n in expected)


async def test_filters_combine_with_the_group(
    client: httpx.AsyncClient, admin_headers: dict[str, str], fleet: dict[str, int]
) -> None:
    params = {"group_id": fleet["g:prod"], "status": "online", "tags": "prod"}
    assert await _ids(client, admin_headers, params) == sorted([fleet["web-01"], fleet["db-01"]])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"label": "no-equals-sign"}, "label"),
        ({"label": "bad key!=x"}, "label"),
        ({"status": "sleeping"}, "query.status"),
        ({"sort": "password_hash"}, "query.sort"),
        ({"sort": "-"}, "query.sort"),
        ({"page_size": 101}, "query.page_size"),
        ({"page": 0}, "query.page"),
        ({"group_id": "abc"}, "query.group_id"),
    ],
)
async def test_bad_filters_are_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = await client.get(NODES, params=params, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    body = response.json()
    fields = {e["field"] for e in (body["data"] or {}).get("errors") or []}
    assert field in fields or field in body["message"]


async def test_sort_whitelist(
    client: httpx.AsyncClient, admin_headers: dict[str, str], fleet: dict[str, int]
) -> None:
    names = {v: k for k, v in fleet.items() if not k.startswith("g:")}

    async def order(sort: str) -> list[str]:
        return [names[i] for i in await _ids(client, admin_headers, {"sort": sort})]

    assert await order("id") == ["web-01", "web-02", "db-01", "DEV-box", "lonely_1"]
    assert await order("-id") == ["lonely_1", "DEV-box", "db-01", "web-02", "web-01"]
    assert await order("ip") == ["web-01", "web-02", "db-01", "lonely_1", "DEV-box"]
    # Newest heartbeat first; never-seen nodes last on every database (ties: id, same way).
    assert await order("-last_heartbeat") == ["db-01", "web-01", "web-02", "lonely_1", "DEV-box"]
    assert await order("last_heartbeat") == ["web-02", "web-01", "db-01", "DEV-box", "lonely_1"]
    assert await order("status") == ["web-01", "db-01", "web-02", "DEV-box", "lonely_1"]
    assert await order("-status") == ["lonely_1", "DEV-box", "web-02", "db-01", "web-01"]
    assert await order("hostname") == ["db-01", "DEV-box", "lonely_1", "web-01", "web-02"]


async def test_paging_and_page_size_cap(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ids = [await f.add_node(stack, f"n{i:03}") for i in range(7)]
    page = (
        await client.get(NODES, params={"page": 2, "page_size": 3}, headers=admin_headers)
    ).json()["data"]
    assert page["total"] == 7
    assert page["page"] == 2
    assert page["page_size"] == 3
    assert [n["id"] for n in page["items"]] == ids[3:6]
    beyond = await client.get(NODES, params={"page": 9, "page_size": 3}, headers=admin_headers)
    assert beyond.json()["data"]["total"] == 7
    assert beyond.json()["data"]["items"] == []
    ok = await client.get(NODES, params={"page_size": 100}, headers=admin_headers)
    assert ok.status_code == 200
    too_big = await client.get(NODES, params={"page_size": 101}, headers=admin_headers)
    assert too_big.status_code == 400


async def test_a_page_costs_the_same_queries_whatever_its_size(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    groups = [await f.add_group(stack, f"g{i}") for i in range(5)]
    for i in range(50):
        node_id = await f.add_node(stack, f"n{i:02}", group_id=groups[i % 5], tags=["t"])
        await f.add_agent(stack, node_id)
    await client.get(NODES, params={"page_size": 1}, headers=admin_headers)  # warm caches

    costs = {}
    for size in (1, 50):
        with f.counting_statements(stack) as statements:
            response = await client.get(
                NODES, params={"page_size": size, "tags": "t"}, headers=admin_headers
            )
        assert response.status_code == 200
        assert len(response.json()["data"]["items"]) == size
        assert all(n["agent"] and n["group"] for n in response.json()["data"]["items"])
        # Authentication reads the users table; everything else is the list's own work.
        costs[size] = len([s for s in statements if "FROM users" not in s])
    assert costs[1] == costs[50] == 4, costs  # count, page, groups, agents


# -- one node -----------------------------------------------------------------------------
async def test_get_one_and_its_errors(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    group = await f.add_group(stack, "g")
    node_id = await f.add_node(stack, "n1", group_id=group)
    await f.add_agent(stack, node_id)
    node = (await client.get(f"{NODES}/{node_id}", headers=admin_headers)).json()["data"]
    assert node["hostname"] == "n1"
    assert node["group"] == {"id": group, "name": "g"}
    assert node["agent"]["node_id"] == node_id

    missing = await client.get(f"{NODES}/999999", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 2001
    for bad in ("abc", "0", "-1", str(2**64)):
        response = await client.get(f"{NODES}/{bad}", headers=admin_headers)
        assert response.status_code == 400, bad
        assert response.json()["code"] == 1001


async def test_update_writes_json_columns_and_side_tables_together(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    group = await f.add_group(stack, "target")
    node_id = await f.add_node(stack, "n1", tags=["old"], labels={"old": "1"})
    response = await client.put(
        f"{NODES}/{node_id}",
        json={
            "group_id": group,
            "tags": ["web", "edge", "Web"],  # a repeat, in another case, is dropped
            "labels": {"env": "prod", "app.kubernetes.io/name": "api"},
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    node = response.json()["data"]
    assert node["group"] == {"id": group, "name": "target"}
    assert node["tags"] == ["web", "edge"]
    assert node["labels"] == {"env": "prod", "app.kubernetes.io/name": "api"}
    assert await f.count_rows(stack, NodeTag, node_id=node_id) == 2
    assert await f.count_rows(stack, NodeTag, node_id=node_id, tag="old") == 0
    assert await f.count_rows(stack, NodeLabel, node_id=node_id, key="env", value="prod") == 1
    assert await f.count_rows(stack, NodeLabel, node_id=node_id) == 2
    assert await _ids(client, admin_headers, {"tags": "edge", "label": "env=prod"}) == [node_id]

    # Only the fields given change; null ungroups and clears.
    partial = await client.put(f"{NODES}/{node_id}", json={"tags": None}, headers=admin_headers)
    assert partial.json()["data"]["tags"] == []
    assert partial.json()["data"]["labels"] == {"env": "prod", "app.kubernetes.io/name": "api"}
    assert partial.json()["data"]["group_id"] == group
    assert await f.count_rows(stack, NodeTag, node_id=node_id) == 0
    ungrouped = await client.put(
        f"{NODES}/{node_id}", json={"group_id": None}, headers=admin_headers
    )
    assert ungrouped.json()["data"]["group"] is None


async def test_tags_match_ignoring_letter_case_on_every_database(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Tags are one tag whatever their letter case, as they are de-duplicated; accents count."""
    node_id = await f.add_node(stack, "n1")
    await f.add_node(stack, "n2", tags=["other"])
    tags = ["Web", "Ünïcode", "Straße", "cafe", "café"]
    response = await client.put(f"{NODES}/{node_id}", json={"tags": tags}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["tags"] == tags  # shown as given
    for query in ("web", "WEB", "wEb", "üNÏCODE", "STRASSE", "straße", "CAFÉ", "Cafe"):
        assert await _ids(client, admin_headers, {"tags": query}) == [node_id], query
    for query in ("unicode", "strase", "cafes"):
        assert await _ids(client, admin_headers, {"tags": query}) == [], query
    long_once_folded = ["ß" * 33]  # 33 characters, 66 once case is folded
    refused = await client.put(
        f"{NODES}/{node_id}", json={"tags": long_once_folded}, headers=admin_headers
    )
    assert refused.status_code == 400
    assert "body.tags.0" in {e["field"] for e in refused.json()["data"]["errors"]}


async def test_label_selectors_match_exactly_on_every_database(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """`env=Prod` is not `env=prod`, and one node may carry both `Env` and `env`."""
    plain = await f.add_node(stack, "plain", labels={"env": "prod"})
    mixed = await f.add_node(stack, "mixed", labels={"Env": "Prod", "env": "prodé"})
    expected = {
        "env=prod": [plain],
        "Env=Prod": [mixed],
        "env=prodé": [mixed],
        "env=Prod": [],
        "ENV=prod": [],
        "env=prode": [],
    }
    for selector, ids in expected.items():
        assert await _ids(client, admin_headers, {"label": selector}) == ids, selector


@pytest.mark.parametrize(
    "body",
    [
        {"description": "the design's nodes table has no such column"},
        {"tags": [f"t{i}" for i in range(33)]},
        {"tags": ["x" * 65]},
        {"tags": ["a,b"]},
        {"tags": [" padded"]},
        {"tags": [""]},
        {"labels": {f"k{i}": "v" for i in range(65)}},
        {"labels": {"k" * 64: "v"}},
        {"labels": {"bad key": "v"}},
        {"labels": {"k": "v" * 192}},
        {"labels": {"Env": "a", "env": "b"}},
        {"labels": {"k": 1}},
    ],
)
async def test_update_validation(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    node_id = await f.add_node(stack, "n1")
    response = await client.put(f"{NODES}/{node_id}", json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001


async def test_a_missing_group_is_404_naming_the_field(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """As every other missing thing: the request is well formed, the group is not there."""
    node_id = await f.add_node(stack, "n1")
    group_id = await f.add_group(stack, "g")
    missing = {"group_id": 999999}
    moved = {"parent_id": 999999}
    answers = {
        "group_id": [
            await client.put(f"{NODES}/{node_id}", json=missing, headers=admin_headers),
            await client.get(NODES, params=missing, headers=admin_headers),
        ],
        "parent_id": [
            await client.post(GROUPS, json={"name": "h"} | moved, headers=admin_headers),
            await client.put(f"{GROUPS}/{group_id}", json=moved, headers=admin_headers),
        ],
    }
    for field, responses in answers.items():
        for response in responses:
            assert response.status_code == 404, response.text
            assert response.json()["code"] == 2004
            assert response.json()["message"] == f"{field}: group 999999 does not exist"


async def test_update_of_a_missing_node_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.put(f"{NODES}/424242", json={"tags": []}, headers=admin_headers)
    assert response.status_code == 404
    assert response.json()["code"] == 2001


async def test_delete_takes_everything_of_the_node_with_it(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    now = utcnow()
    doomed, kept = [await f.add_node(stack, n, tags=["t"], labels={"k": "v"}) for n in "ab"]
    for node_id in (doomed, kept):
        await f.add_agent(stack, node_id)
        await f.add_credential(stack, node_id)
        await f.add_command(stack, node_id)
        await f.add_metrics(stack, node_id, now - timedelta(minutes=10), timedelta(minutes=1), 5)
        await f.add_latest(stack, node_id, now)
        await f.add_event(stack, node_id, "online", now)
        await client.put(
            f"{NODES}/{node_id}/config", json={"config": {"x": "1"}}, headers=admin_headers
        )

    response = await client.delete(f"{NODES}/{doomed}", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert (await client.get(f"{NODES}/{doomed}", headers=admin_headers)).status_code == 404
    tables = (Agent, NodeCredential, NodeCommand, NodeTag, NodeLabel, NodeMetric, NodeEvent)
    for table in (*tables, NodeMetricLatest):
        assert await f.count_rows(stack, table, node_id=doomed) == 0, table.__tablename__
        assert await f.count_rows(stack, table, node_id=kept) > 0, table.__tablename__
    assert await f.count_rows(stack, NodeConfig, scope="node", scope_id=doomed) == 0
    assert await f.count_rows(stack, NodeConfig, scope="node", scope_id=kept) == 1
    again = await client.delete(f"{NODES}/{doomed}", headers=admin_headers)
    assert again.status_code == 404
    assert again.json()["code"] == 2001


async def test_roles(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "n1")
    viewer = await _as(client, admin_headers, "viewer")
    operator = await _as(client, admin_headers, "operator")
    url = f"{NODES}/{node_id}"
    for path in ("", "/agent", "/metrics", "/metrics/latest", "/events"):
        assert (await client.get(url + path, headers=viewer)).status_code == 200, path
    assert (await client.get(NODES, headers=viewer)).status_code == 200
    assert (await client.put(url, json={"tags": ["x"]}, headers=viewer)).status_code == 403
    assert (await client.delete(url, headers=viewer)).status_code == 403
    assert (await client.put(url, json={"tags": ["x"]}, headers=operator)).status_code == 200
    assert (await client.delete(url, headers=operator)).status_code == 403
    assert (await client.delete(url, headers=admin_headers)).status_code == 200


async def test_changes_are_audited(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "audited", ip="10.9.9.9")
    await client.put(f"{NODES}/{node_id}", json={"tags": ["a"]}, headers=admin_headers)
    await client.delete(f"{NODES}/{node_id}", headers=admin_headers)
    await client.delete(f"{NODES}/{node_id}", headers=admin_headers)  # gone: a failed row

    rows = (
        await client.get(AUDIT, params={"resource_type": "node"}, headers=admin_headers)
    ).json()["data"]["items"]
    by_action = defaultdict(list)
    for row in rows:
        by_action[row["action"]].append(row)
    update = by_action["node.update"][0]
    assert update["resource_id"] == str(node_id)
    assert update["username"] == "admin"
    assert update["detail"] == {"changed": ["tags"]}
    deletes = sorted(by_action["node.delete"], key=lambda r: r["status"])
    assert [r["status"] for r in deletes] == ["failed", "success"]
    assert deletes[1]["detail"]["hostname"] == "audited"
    assert deletes[0]["error_message"].startswith("2001")


# -- history ------------------------------------------------------------------------------
async def test_metrics_raw_within_the_range(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "n1")
    now = utcnow()
    # Half a minute off the minute, so a request a few seconds later sees the same hour.
    first = now - timedelta(minutes=90, seconds=-30)
    rows = await f.add_metrics(stack, node_id, first, timedelta(minutes=1), 90)
    url = f"{NODES}/{node_id}/metrics"

    recent = (await client.get(url, headers=admin_headers)).json()["data"]  # the last hour
    assert len(recent) == 60
    assert recent[0]["timestamp"].endswith("Z")
    assert [p["timestamp"] for p in recent] == sorted(p["timestamp"] for p in recent)
    assert recent[-1]["cpu_usage"] == rows[-1]["cpu_usage"]
    assert recent[-1]["memory_used"] == rows[-1]["memory_used"]
    assert set(recent[0]) == {"node_id", *METRIC_COLUMNS, "timestamp"}

    start = first.isoformat() + "Z"
    end = (first + timedelta(minutes=10)).isoformat() + "+00:00"
    window = await client.get(url, params={"start": start, "end": end}, headers=admin_headers)
    assert len(window.json()["data"]) == 10  # [start, end): the report at `end` is not in it
    assert window.json()["data"][0]["timestamp"] == start

    # Any offset is understood: the same window, written in UTC+8.
    in_utc8 = {
        name: (at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"
        for name, at in (("start", first), ("end", first + timedelta(minutes=10)))
    }
    shifted = await client.get(url, params=in_utc8, headers=admin_headers)
    assert shifted.json()["data"] == window.json()["data"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 400),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 400),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:01Z"}, 400),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}, 200),  # 31 days
        ({"start": "yesterday"}, 400),
    ],
)
async def test_metrics_range_rules(
    stack: Stack,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    params: dict[str, str],
    status: int,
) -> None:
    node_id = await f.add_node(stack, "n1")
    response = await client.get(f"{NODES}/{node_id}/metrics", params=params, headers=admin_headers)
    assert response.status_code == status, response.text


async def test_metrics_of_a_long_recent_range_are_bucket_averages_of_raw_reports(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Within the raw retention, buckets shorter than a rollup average the raw reports."""
    node_id = await f.add_node(stack, "n1")
    start = utcnow().replace(minute=0, second=0) - timedelta(hours=30)
    end = start + timedelta(days=1)
    step = timedelta(seconds=43.2)  # 2,000 reports over a day: buckets of 173 s
    rows = await f.add_metrics(stack, node_id, start, step, 2000)
    await f.add_metrics(stack, await f.add_node(stack, "other"), start, step, 50)

    params = {"start": start.isoformat() + "Z", "end": end.isoformat() + "Z"}
    points = (
        await client.get(f"{NODES}/{node_id}/metrics", params=params, headers=admin_headers)
    ).json()["data"]
    bucket = math.ceil((end - start).total_seconds() / 500)
    expected: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        expected[int((row["timestamp"] - start).total_seconds()) // bucket].append(row)
    assert 0 < len(points) <= 500
    assert len(points) == len(expected)
    for point, (index, members) in zip(points, sorted(expected.items()), strict=True):
        assert point["timestamp"] == (start + timedelta(seconds=index * bucket)).isoformat() + "Z"
        for name in METRIC_COLUMNS:
            mean = sum(m[name] for m in members) / len(members)
            if name in PERCENTS:
                assert point[name] == pytest.approx(mean, abs=0.006), (index, name)
            else:
                assert point[name] == pytest.approx(mean, abs=0.51), (index, name)


async def test_latest_metrics_and_agent_are_null_until_reported(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "n1")
    for path in ("metrics/latest", "agent"):
        response = await client.get(f"{NODES}/{node_id}/{path}", headers=admin_headers)
        assert response.status_code == 200
        assert response.json()["data"] is None, path
        missing = await client.get(f"{NODES}/999999/{path}", headers=admin_headers)
        assert missing.status_code == 404
        assert missing.json()["code"] == 2001

    at = utcnow()
    await f.add_latest(stack, node_id, at)
    await f.add_agent(stack, node_id, version="2.1.0", restart_count=3, last_error="boom")
    latest = (await client.get(f"{NODES}/{node_id}/metrics/latest", headers=admin_headers)).json()
    assert latest["data"]["node_id"] == node_id
    assert latest["data"]["timestamp"] == at.isoformat() + "Z"
    assert latest["data"]["cpu_usage"] == f.metric_values(1)["cpu_usage"]
    agent = (await client.get(f"{NODES}/{node_id}/agent", headers=admin_headers)).json()["data"]
    assert (agent["version"], agent["restart_count"], agent["last_error"]) == ("2.1.0", 3, "boom")


async def test_events_newest_first(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "n1")
    start = utcnow() - timedelta(hours=1)
    for i, status in enumerate(["online", "offline", "online", "offline", "online"]):
        await f.add_event(stack, node_id, status, start + timedelta(minutes=i))
    await f.add_event(stack, await f.add_node(stack, "n2"), "online", start)

    url = f"{NODES}/{node_id}/events"
    page = (await client.get(url, params={"page_size": 2}, headers=admin_headers)).json()["data"]
    assert page["total"] == 5
    assert [e["at"] for e in page["items"]] == [
        (start + timedelta(minutes=m)).isoformat() + "Z" for m in (4, 3)
    ]
    assert page["items"][0]["to_status"] == "online"
    assert (await client.get(f"{NODES}/999999/events", headers=admin_headers)).status_code == 404
