"""Every mutating request and every login attempt leaves an audit row; failures fold."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from opscaffold.manager.audit import service as audit_service
from tests.manager.conftest import ADMIN_PASSWORD, bearer, login, make_user

AUDIT = "/api/v1/system/audit-logs"


async def _rows(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(AUDIT, params={"page_size": 100, **params}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return items


async def test_login_success_is_audited_with_the_user(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rows = await _rows(client, admin_headers, action="auth.login")
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "success"
    assert row["username"] == "admin"
    assert row["ip"] == "203.0.113.7"
    assert row["detail"] == {"username": "admin"}


async def test_failed_logins_fold_into_one_row_per_source_and_minute(
    client: httpx.AsyncClient,
) -> None:
    for name in ("admin", "ghost", "admin"):
        await client.post("/api/v1/auth/login", json={"username": name, "password": "wrong-pw-1"})
    headers = bearer((await login(client))["token"])
    failed = await _rows(client, headers, action="auth.login", status="failed")
    assert len(failed) == 1
    assert failed[0]["occurrences"] == 3
    assert failed[0]["error_message"].startswith("1002")
    assert failed[0]["detail"]["usernames"] == {"admin": 2, "ghost": 1}


async def test_a_folded_row_lists_a_bounded_number_of_usernames(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_service, "MAX_FOLDED_NAMES", 2)
    for name in ("ann", "bob", "cid", "ann", "dan", "cid"):
        await client.post("/api/v1/auth/login", json={"username": name, "password": "wrong-pw-1"})
    headers = bearer((await login(client))["token"])
    failed = await _rows(client, headers, action="auth.login", status="failed")
    assert [row["occurrences"] for row in failed] == [6]
    detail = failed[0]["detail"]
    assert detail["usernames"] == {"ann": 2, "bob": 1}
    assert detail["usernames_not_listed"] == 3  # cid twice and dan once


async def test_a_change_and_its_audit_row_commit_together(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    user = await make_user(client, admin_headers, "erin", role="operator")
    rows = await _rows(client, admin_headers, action="user.create")
    assert len(rows) == 1
    assert rows[0]["resource_type"] == "user"
    assert rows[0]["resource_id"] == str(user["id"])
    assert rows[0]["detail"] == {"username": "erin", "role": "operator", "status": 1}
    assert rows[0]["user_agent"]

    # A refused change leaves a failed row and no trace of a success.
    duplicate = await client.post(
        "/api/v1/system/users",
        json={"username": "erin", "password": "Str0ng-Password"},
        headers=admin_headers,
    )
    assert duplicate.status_code == 409
    rows = await _rows(client, admin_headers, action="user.create")
    assert [r["status"] for r in rows] == ["failed", "success"]
    assert rows[0]["error_message"].startswith("6002")


async def test_refused_requests_are_audited(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_user(client, admin_headers, "vic", role="viewer")
    viewer = bearer((await login(client, "vic", "Str0ng-Password"))["token"])
    denied = await client.post("/api/v1/system/users", json={"username": "x"}, headers=viewer)
    assert denied.status_code == 403
    anonymous = await client.delete("/api/v1/system/users/5")
    assert anonymous.status_code == 401
    invalid = await client.post(
        "/api/v1/system/users",
        content=b"{broken",
        headers=admin_headers | {"Content-Type": "application/json"},
    )
    assert invalid.status_code == 400
    failed = await _rows(client, admin_headers, status="failed")
    by_action = {(r["action"], r["error_message"][:4], r["username"]) for r in failed}
    assert ("user.create", "1003", "vic") in by_action
    assert ("user.delete", "1002", None) in by_action
    # The body was unreadable, so the request never got as far as knowing its caller.
    assert ("user.create", "1001", None) in by_action


async def test_no_password_or_token_ever_reaches_the_audit_log(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    secret = "Secret-Horse-77"
    await make_user(client, admin_headers, "frank", password=secret)
    tokens = await login(client, "frank", secret)
    await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await client.put(
        "/api/v1/auth/me/password",
        json={"current_password": secret, "new_password": "Other-Horse-88"},
        headers=bearer(tokens["token"]),
    )
    await client.post("/api/v1/auth/login", json={"username": "frank", "password": secret})
    dump = json.dumps(await _rows(client, admin_headers))
    for value in (
        secret,
        "Other-Horse-88",
        ADMIN_PASSWORD,
        tokens["token"],
        tokens["refresh_token"],
    ):
        assert value not in dump
    assert "auth.change_password" in dump
    assert "auth.refresh" in dump


async def test_filters_and_pagination(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    users = [await make_user(client, admin_headers, f"user{i}") for i in range(3)]
    await client.delete(f"/api/v1/system/users/{users[0]['id']}", headers=admin_headers)

    page = await client.get(AUDIT, params={"page": 2, "page_size": 2}, headers=admin_headers)
    body = page.json()["data"]
    assert body["total"] == 5  # one login, three creates, one delete
    assert body["page"] == 2
    assert len(body["items"]) == 2

    deletes = await _rows(
        client, admin_headers, resource_type="user", resource_id=str(users[0]["id"])
    )
    assert {r["action"] for r in deletes} == {"user.create", "user.delete"}
    me = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()["data"]
    assert len(await _rows(client, admin_headers, user_id=me["id"])) == 5
    assert len(await _rows(client, admin_headers, username="admin", action="user.delete")) == 1

    newest = (await _rows(client, admin_headers))[0]["created_at"]
    assert (
        await _rows(client, admin_headers, start="2000-01-01T00:00:00Z", end="2000-01-02T00:00:00Z")
        == []
    )
    assert (
        len(
            await _rows(
                client, admin_headers, start="2000-01-01T00:00:00Z", end="2999-01-01T00:00:00+08:00"
            )
        )
        == 5
    )
    assert newest.endswith("Z")
    backwards = await client.get(
        AUDIT,
        params={"start": "2030-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"},
        headers=admin_headers,
    )
    assert backwards.status_code == 400
