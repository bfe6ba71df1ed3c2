"""Node groups through the REST API: the tree, its rules, and who may change it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user

GROUPS = "/api/v1/groups"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(GROUPS, json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()["data"]
    return group


async def _flat(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(GROUPS, headers=headers)
    assert response.status_code == 200, response.text
    groups: list[dict[str, Any]] = response.json()["data"]
    return groups


async def test_create_list_update_delete(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    prod = await _create(client, admin_headers, "prod", description="production", sort_order=2)
    assert prod["parent_id"] is None
    assert prod["created_at"].endswith("Z")
    dev = await _create(client, admin_headers, "dev", sort_order=1)
    web = await _create(client, admin_headers, "web", parent_id=prod["id"])

    flat = await _flat(client, admin_headers)  # by sort_order, then id
    assert [g["name"] for g in flat] == ["web", "dev", "prod"]
    assert {g["name"]: g["parent_id"] for g in flat} == {
        "prod": None,
        "dev": None,
        "web": prod["id"],
    }
    assert all(g["children"] is None for g in flat)

    updated = await client.put(
        f"{GROUPS}/{web['id']}",
        json={"name": "frontend", "description": "edge tier", "sort_order": 5},
        headers=admin_headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["name"] == "frontend"
    assert updated.json()["data"]["parent_id"] == prod["id"]  # not given: unchanged
    cleared = await client.put(
        f"{GROUPS}/{web['id']}", json={"description": None}, headers=admin_headers
    )
    assert cleared.json()["data"]["description"] is None
    assert cleared.json()["data"]["name"] == "frontend"

    for group in (web, dev):
        response = await client.delete(f"{GROUPS}/{group['id']}", headers=admin_headers)
        assert response.status_code == 200, response.text
    assert [g["name"] for g in await _flat(client, admin_headers)] == ["prod"]
    gone = await client.put(f"{GROUPS}/{dev['id']}", json={"name": "x"}, headers=admin_headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == 2004


async def test_tree_view_nests_children_in_order(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    root = await _create(client, admin_headers, "root")
    b = await _create(client, admin_headers, "b", parent_id=root["id"], sort_order=2)
    a = await _create(client, admin_headers, "a", parent_id=root["id"], sort_order=1)
    await _create(client, admin_headers, "leaf", parent_id=b["id"])
    await _create(client, admin_headers, "other")

    response = await client.get(GROUPS, params={"tree": "true"}, headers=admin_headers)
    tree = response.json()["data"]
    assert [g["name"] for g in tree] == ["root", "other"]
    assert [c["name"] for c in tree[0]["children"]] == ["a", "b"]
    assert tree[0]["children"][0]["id"] == a["id"]
    assert tree[0]["children"][0]["children"] == []
    assert [c["name"] for c in tree[0]["children"][1]["children"]] == ["leaf"]
    assert tree[1]["children"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 65},
        {"name": "ok", "description": "d" * 256},
        {"name": "ok", "parent_id": 0},
        {"name": "ok", "sort_order": "first"},
        {"name": "ok", "color": "red"},
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(GROUPS, json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001


async def test_sibling_names_are_unique(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    a = await _create(client, admin_headers, "a")
    b = await _create(client, admin_headers, "b")
    await _create(client, admin_headers, "web", parent_id=a["id"])
    await _create(client, admin_headers, "web", parent_id=b["id"])  # another parent: fine
    web_b = await _create(client, admin_headers, "web-2", parent_id=b["id"])
    again = await client.post(
        GROUPS, json={"name": "web", "parent_id": a["id"]}, headers=admin_headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == 2005
    top = await client.post(GROUPS, json={"name": "a"}, headers=admin_headers)
    assert top.status_code == 409
    renamed = await client.put(
        f"{GROUPS}/{web_b['id']}", json={"name": "web"}, headers=admin_headers
    )
    assert renamed.status_code == 409
    moved = await client.put(
        f"{GROUPS}/{web_b['id']}", json={"parent_id": a["id"]}, headers=admin_headers
    )
    assert moved.status_code == 200  # "web-2" is free under a


async def test_sibling_names_compare_the_same_way_on_every_database(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Letter case does not make a new name; accents and blanks do, on every database."""
    await _create(client, admin_headers, "Web")
    for taken in ("web", "WEB"):
        response = await client.post(GROUPS, json={"name": taken}, headers=admin_headers)
        assert response.status_code == 409, taken
    for free in ("wéb", "web 2"):
        await _create(client, admin_headers, free)


async def test_a_group_cannot_move_under_itself_or_its_descendants(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    top = await _create(client, admin_headers, "top")
    mid = await _create(client, admin_headers, "mid", parent_id=top["id"])
    low = await _create(client, admin_headers, "low", parent_id=mid["id"])
    other = await _create(client, admin_headers, "other")

    for parent, words in ((top, "itself"), (mid, "descendant"), (low, "descendant")):
        response = await client.put(
            f"{GROUPS}/{top['id']}", json={"parent_id": parent["id"]}, headers=admin_headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 1001
        assert words in response.json()["message"]
    missing = await client.put(
        f"{GROUPS}/{top['id']}", json={"parent_id": 999999}, headers=admin_headers
    )
    assert missing.status_code == 404
    assert "999999" in missing.json()["message"]

    # Moving down into another branch, and back to the top, are fine.
    moved = await client.put(
        f"{GROUPS}/{mid['id']}", json={"parent_id": other["id"]}, headers=admin_headers
    )
    assert moved.json()["data"]["parent_id"] == other["id"]
    assert (
        await client.put(
            f"{GROUPS}/{top['id']}", json={"parent_id": low["id"]}, headers=admin_headers
        )
    ).status_code == 200  # low is no longer below top
    to_root = await client.put(
        f"{GROUPS}/{mid['id']}", json={"parent_id": None}, headers=admin_headers
    )
    assert to_root.json()["data"]["parent_id"] is None


async def test_delete_is_refused_while_the_group_holds_nodes_or_groups(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    group = await _create(client, admin_headers, "busy")
    child = await _create(client, admin_headers, "child", parent_id=group["id"])
    nodes = [await f.add_node(stack, f"n{i}", group_id=group["id"]) for i in range(3)]
    url = f"{GROUPS}/{group['id']}"

    refused = await client.delete(url, headers=admin_headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == 2006
    assert "3 node(s) and 1 child group(s)" in refused.json()["message"]

    for node_id in nodes:
        await client.put(f"/api/v1/nodes/{node_id}", json={"group_id": None}, headers=admin_headers)
    still = await client.delete(url, headers=admin_headers)
    assert "0 node(s) and 1 child group(s)" in still.json()["message"]
    assert (
        await client.delete(f"{GROUPS}/{child['id']}", headers=admin_headers)
    ).status_code == 200
    assert (await client.delete(url, headers=admin_headers)).status_code == 200
    missing = await client.delete(url, headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 2004


async def test_roles(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    for role in ("viewer", "operator"):
        await make_user(client, admin_headers, role, role=role)
    viewer = bearer((await login(client, "viewer", "Str0ng-Password"))["token"])
    operator = bearer((await login(client, "operator", "Str0ng-Password"))["token"])

    assert (await client.get(GROUPS, headers=viewer)).status_code == 200
    assert (await client.post(GROUPS, json={"name": "v"}, headers=viewer)).status_code == 403
    group = await _create(client, operator, "ops")
    url = f"{GROUPS}/{group['id']}"
    assert (await client.put(url, json={"name": "x"}, headers=viewer)).status_code == 403
    assert (await client.put(url, json={"name": "ops2"}, headers=operator)).status_code == 200
    assert (await client.delete(url, headers=operator)).status_code == 403
    assert (await client.delete(url, headers=admin_headers)).status_code == 200


async def test_changes_are_audited(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    group = await _create(client, admin_headers, "audited")
    await client.put(f"{GROUPS}/{group['id']}", json={"sort_order": 3}, headers=admin_headers)
    await client.delete(f"{GROUPS}/{group['id']}", headers=admin_headers)

    response = await client.get(
        "/api/v1/system/audit-logs", params={"resource_type": "group"}, headers=admin_headers
    )
    rows = {r["action"]: r for r in response.json()["data"]["items"]}
    assert set(rows) == {"group.create", "group.update", "group.delete"}
    assert all(r["resource_id"] == str(group["id"]) for r in rows.values())
    assert rows["group.create"]["detail"] == {"name": "audited", "parent_id": None}
    assert rows["group.update"]["detail"] == {"changed": ["sort_order"]}
    assert rows["group.delete"]["detail"] == {"name": "audited"}
