"""The permission table is complete and enforced on the server for every route and role."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import APIRouter

from opscaffold.manager.app import create_app
from opscaffold.manager.auth.permissions import PERMISSIONS, unlisted_routes
from opscaffold.manager.config import load_settings
from opscaffold.manager.kit.routes import iter_routes
from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user

ROLES = ("admin", "operator", "viewer")


def test_every_route_of_the_app_is_in_the_permission_table(stack: Stack) -> None:
    routes = set(iter_routes(stack.app.routes))
    assert routes, "no routes found: the walk itself is broken"
    missing = routes - set(PERMISSIONS)
    assert not missing, f"routes missing from the permission table: {sorted(missing)}"
    stale = set(PERMISSIONS) - routes
    assert not stale, f"permission entries for routes that do not exist: {sorted(stale)}"


def test_an_unlisted_route_stops_the_app_from_being_built(tmp_path: object) -> None:
    stray = APIRouter()

    @stray.get("/api/v1/stray")
    async def stray_route() -> dict[str, str]:
        return {}

    assert unlisted_routes(stray.routes) == [("GET", "/api/v1/stray")]
    settings = load_settings(None, {"OPS_DATA_DIR": str(tmp_path)})
    app = create_app(settings, build_only=True)
    assert unlisted_routes(app.routes) == []


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)  # no such row: allowed calls change nothing


def _protected() -> list[tuple[str, str, frozenset[str]]]:
    return [
        (method, path, rule.roles)
        for (method, path), rule in sorted(PERMISSIONS.items())
        if rule.roles is not None
    ]


@pytest.mark.parametrize(("method", "path", "allowed"), _protected())
async def test_role_matrix(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    allowed: frozenset[str],
) -> None:
    url = _concrete(path)
    anonymous = await client.request(method, url, json={})
    assert anonymous.status_code == 401, f"{method} {path} without a token"
    for role in ROLES:
        # A user of its own per role, so that a route that ends sessions ends only theirs.
        await make_user(client, admin_headers, f"u-{role}", role=role)
        headers = bearer((await login(client, f"u-{role}", "Str0ng-Password"))["token"])
        response = await client.request(method, url, json={}, headers=headers)
        if role in allowed:
            assert response.status_code != 403, f"{role} refused {method} {path}"
        else:
            assert response.status_code == 403, f"{role} allowed {method} {path}"
            assert response.json()["code"] == 1003


def test_matrix_follows_the_design() -> None:
    # Spec §6.1.2: user management and the audit log are admin only.
    for (method, path), rule in PERMISSIONS.items():
        if path.startswith(("/api/v1/system/users", "/api/v1/system/audit-logs")):
            assert rule.roles == frozenset({"admin"}), (method, path)


@pytest.mark.parametrize(
    ("kind", "senders"),
    [
        ("ping", {"admin", "operator"}),
        ("restart", {"admin", "operator"}),  # operators run tasks on nodes, which is more
        ("config", {"admin"}),
        ("update", {"admin"}),
    ],
)
async def test_who_may_send_which_command(
    stack: Stack,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    kind: str,
    senders: set[str],
) -> None:
    node_id = await f.add_node(stack, "n1")
    for role in ROLES:
        await make_user(client, admin_headers, f"u-{role}", role=role)
        headers = bearer((await login(client, f"u-{role}", "Str0ng-Password"))["token"])
        sent = await client.post(
            "/api/v1/commands", json={"node_ids": [node_id], "type": kind}, headers=headers
        )
        if role not in senders:
            assert sent.status_code == 403, (role, sent.text)
            assert sent.json()["code"] == 1003
            continue
        assert sent.status_code == 201, (role, sent.text)
        command_id = sent.json()["data"]["ids"][0]
        shown = await client.get(f"/api/v1/commands/{command_id}", headers=headers)
        assert shown.status_code == 200
        assert shown.json()["data"]["type"] == kind
