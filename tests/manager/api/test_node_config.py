"""Configuration at three levels (defaults, groups down the tree, node) and its delivery."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opscaffold.manager.db import transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.node import repository
from opscaffold.manager.node import service as node_service
from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user

NODES = "/api/v1/nodes"
GROUPS = "/api/v1/groups"
DEFAULTS = {"heartbeat_interval": "30", "metric_interval": "60"}


async def _put(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, config: dict[str, str]
) -> httpx.Response:
    response = await client.put(f"{url}/config", json={"config": config}, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def _new_commands(stack: Stack, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {c["id"] for c in seen}
    return [c for c in await f.commands(stack) if c["id"] not in known]


async def _effective(
    client: httpx.AsyncClient, headers: dict[str, str], node_id: int
) -> dict[str, Any]:
    response = await client.get(f"{NODES}/{node_id}/config/effective", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
async def tree(stack: Stack, client: httpx.AsyncClient) -> dict[str, int]:
    """grand > parent > child, a node in child, one in parent, one elsewhere."""
    grand = await f.add_group(stack, "grand")
    parent = await f.add_group(stack, "parent", grand)
    child = await f.add_group(stack, "child", parent)
    elsewhere = await f.add_group(stack, "elsewhere")
    return {
        "grand": grand,
        "parent": parent,
        "child": child,
        "elsewhere": elsewhere,
        "in_child": await f.add_node(stack, "in-child", group_id=child),
        "in_parent": await f.add_node(stack, "in-parent", group_id=parent),
        "outside": await f.add_node(stack, "outside", group_id=elsewhere),
    }


async def test_defaults_come_from_settings(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    assert node_service.default_node_config(stack.settings) == DEFAULTS
    effective = await _effective(client, admin_headers, tree["in_child"])
    assert effective == {
        "config": DEFAULTS,
        "sources": dict.fromkeys(DEFAULTS, "default"),
        "delivery": None,  # nothing sent since it enrolled
    }
    own = await client.get(f"{NODES}/{tree['in_child']}/config", headers=admin_headers)
    assert own.json()["data"] == {"config": {}}


async def test_inheritance_nearest_level_wins(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    await _put(
        client,
        admin_headers,
        f"{GROUPS}/{tree['grand']}",
        {"log.level": "info", "region": "eu", "metric_interval": "120"},
    )
    await _put(client, admin_headers, f"{GROUPS}/{tree['parent']}", {"log.level": "warn"})
    await _put(client, admin_headers, f"{NODES}/{tree['in_child']}", {"region": "us"})

    effective = await _effective(client, admin_headers, tree["in_child"])
    assert effective["config"] == {
        "heartbeat_interval": "30",
        "metric_interval": "120",  # from the grand-parent group, two levels up
        "log.level": "warn",  # the parent overrides the grand-parent
        "region": "us",  # the node overrides every group
    }
    assert effective["sources"] == {
        "heartbeat_interval": "default",
        "metric_interval": f"group:{tree['grand']}",
        "log.level": f"group:{tree['parent']}",
        "region": "node",
    }
    outside = await _effective(client, admin_headers, tree["outside"])
    assert outside["config"] == DEFAULTS
    # The function the gRPC GetConfig calls agrees with the API.
    async with stack.runtime.sessions() as session:
        direct = await node_service.effective_config(session, tree["in_child"], stack.settings)
    assert direct == effective["config"]

    # Each level reads back its own map only; an empty map clears a level.
    own = await client.get(f"{GROUPS}/{tree['parent']}/config", headers=admin_headers)
    assert own.json()["data"] == {"config": {"log.level": "warn"}}
    await _put(client, admin_headers, f"{GROUPS}/{tree['parent']}", {})
    cleared = await _effective(client, admin_headers, tree["in_child"])
    assert cleared["config"]["log.level"] == "info"


async def test_a_put_sends_each_affected_node_its_effective_config(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    await _put(client, admin_headers, f"{NODES}/{tree['in_child']}", {"region": "us"})
    sent = await f.commands(stack)
    assert [c["node_id"] for c in sent] == [tree["in_child"]]
    assert sent[0]["payload"] == {"config": DEFAULTS | {"region": "us"}}

    response = await _put(client, admin_headers, f"{GROUPS}/{tree['parent']}", {"region": "eu"})
    assert response.json()["data"] == {"config": {"region": "eu"}}
    sent = await _new_commands(stack, sent)
    # Every node in the group's subtree, and none outside it; each with its own merge.
    assert sorted(c["node_id"] for c in sent) == sorted([tree["in_child"], tree["in_parent"]])
    payloads = {c["node_id"]: c["payload"] for c in sent}
    assert payloads[tree["in_child"]] == {"config": DEFAULTS | {"region": "us"}}
    assert payloads[tree["in_parent"]] == {"config": DEFAULTS | {"region": "eu"}}
    admin_id = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()["data"]["id"]
    assert {c["created_by"] for c in sent} == {admin_id}


async def test_moves_resend_config_when_it_changes(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    await _put(client, admin_headers, f"{GROUPS}/{tree['grand']}", {"region": "eu"})
    before = await f.commands(stack)

    # A node moved out of the tree loses what it inherited.
    moved = await client.put(
        f"{NODES}/{tree['in_parent']}", json={"group_id": tree["elsewhere"]}, headers=admin_headers
    )
    assert moved.status_code == 200
    sent = await _new_commands(stack, before)
    assert [(c["node_id"], c["payload"]) for c in sent] == [
        (tree["in_parent"], {"config": DEFAULTS})
    ]

    # A group moved under another parent: its nodes learn their new inheritance.
    await _put(client, admin_headers, f"{GROUPS}/{tree['elsewhere']}", {"region": "ap"})
    before = await f.commands(stack)
    response = await client.put(
        f"{GROUPS}/{tree['child']}", json={"parent_id": tree["elsewhere"]}, headers=admin_headers
    )
    assert response.status_code == 200
    sent = await _new_commands(stack, before)
    assert [(c["node_id"], c["payload"]) for c in sent] == [
        (tree["in_child"], {"config": DEFAULTS | {"region": "ap"}})
    ]
    # A change that alters nothing sends nothing.
    before = await f.commands(stack)
    await client.put(f"{GROUPS}/{tree['child']}", json={"name": "renamed"}, headers=admin_headers)
    assert await _new_commands(stack, before) == []


@pytest.mark.parametrize(
    "config",
    [
        {"Upper": "x"},
        {"with space": "x"},
        {"": "x"},
        {"k" * 65: "x"},
        {"k": "v" * 1025},
        {"k": 1},
        {f"k{i}": "v" for i in range(101)},
    ],
)
async def test_config_validation(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tree: dict[str, int],
    config: dict[str, Any],
) -> None:
    for url in (f"{NODES}/{tree['in_child']}", f"{GROUPS}/{tree['grand']}"):
        response = await client.put(f"{url}/config", json={"config": config}, headers=admin_headers)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 1001


async def test_limits_are_accepted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    config = {f"key.{i:03}": "v" * 1024 for i in range(100)}
    response = await _put(client, admin_headers, f"{NODES}/{tree['in_child']}", config)
    assert response.json()["data"]["config"] == config


async def test_missing_targets_are_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for url, code in ((f"{NODES}/999999", 2001), (f"{GROUPS}/999999", 2004)):
        for method in ("GET", "PUT"):
            response = await client.request(
                method, f"{url}/config", json={"config": {}}, headers=admin_headers
            )
            assert response.status_code == 404, (method, url)
            assert response.json()["code"] == code
    effective = await client.get(f"{NODES}/999999/config/effective", headers=admin_headers)
    assert effective.status_code == 404


async def test_only_editors_read_or_write_config_and_writes_are_audited(
    client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    for role in ("viewer", "operator"):
        await make_user(client, admin_headers, role, role=role)
    viewer = bearer((await login(client, "viewer", "Str0ng-Password"))["token"])
    operator = bearer((await login(client, "operator", "Str0ng-Password"))["token"])
    node_url = f"{NODES}/{tree['in_child']}"
    for path in ("/config", "/config/effective"):
        assert (await client.get(node_url + path, headers=viewer)).status_code == 403
        assert (await client.get(node_url + path, headers=operator)).status_code == 200
    body = {"config": {"a": "1"}}
    assert (await client.put(f"{node_url}/config", json=body, headers=viewer)).status_code == 403
    await _put(client, operator, node_url, {"a": "1"})
    await _put(client, operator, f"{GROUPS}/{tree['grand']}", {"b": "2"})

    response = await client.get(
        "/api/v1/system/audit-logs", params={"status": "success"}, headers=admin_headers
    )
    rows = {r["action"]: r for r in response.json()["data"]["items"]}
    assert rows["node.set_config"]["detail"] == {"keys": ["a"], "nodes": 1}
    assert rows["node.set_config"]["username"] == "operator"
    assert rows["group.set_config"]["detail"] == {"keys": ["b"], "nodes": 2}
    assert rows["group.set_config"]["resource_id"] == str(tree["grand"])


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", " 30", "90", "100000"])
@pytest.mark.parametrize("level", ["node", "group"])
async def test_known_keys_are_checked_naming_the_key(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tree: dict[str, int],
    level: str,
    value: str,
) -> None:
    url = f"{NODES}/{tree['in_child']}" if level == "node" else f"{GROUPS}/{tree['child']}"
    config = {"heartbeat_interval": value, "region": "eu"}
    response = await client.put(f"{url}/config", json={"config": config}, headers=admin_headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 1001
    assert "config.heartbeat_interval" in body["message"]
    own = await client.get(f"{url}/config", headers=admin_headers)
    assert own.json()["data"] == {"config": {}}
    # In range (and shorter than node.heartbeat_timeout, 90 s) is taken.
    await _put(client, admin_headers, url, {"heartbeat_interval": "89", "metric_interval": "1"})


async def test_a_bad_stored_value_yields_to_the_level_above(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], tree: dict[str, int]
) -> None:
    await _put(client, admin_headers, f"{GROUPS}/{tree['parent']}", {"metric_interval": "45"})
    # Stored before values were checked: the PUT refuses these now.
    async with transaction(stack.runtime.sessions) as session:
        await repository.set_config(
            session,
            "group",
            tree["child"],
            {"heartbeat_interval": "abc", "metric_interval": "0", "region": "eu"},
            updated_by=None,
            now=utcnow(),
        )
    effective = await _effective(client, admin_headers, tree["in_child"])
    assert effective["config"] == {
        "heartbeat_interval": "30",
        "metric_interval": "45",
        "region": "eu",
    }
    assert effective["sources"]["heartbeat_interval"] == "default"
    assert effective["sources"]["metric_interval"] == f"group:{tree['parent']}"
