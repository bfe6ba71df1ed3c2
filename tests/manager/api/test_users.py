"""User management (admin) and the rules that protect it."""

from __future__ import annotations

import httpx
import pytest

from tests.manager.conftest import bearer, login, make_user

USERS = "/api/v1/system/users"


async def test_create_get_list_update_delete(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await client.post(
        USERS,
        json={
            "username": "alice",
            "password": "Correct-Horse-9",
            "email": "alice@example.com",
            "role": "operator",
        },
        headers=admin_headers,
    )
    assert created.status_code == 201
    alice = created.json()["data"]
    assert alice["role"] == "operator"
    assert alice["status"] == 1
    assert "password" not in alice
    assert "password_hash" not in alice

    fetched = await client.get(f"{USERS}/{alice['id']}", headers=admin_headers)
    assert fetched.json()["data"]["email"] == "alice@example.com"

    listed = (await client.get(USERS, params={"page_size": 1}, headers=admin_headers)).json()
    assert listed["data"]["total"] == 2
    assert len(listed["data"]["items"]) == 1
    assert listed["data"]["page_size"] == 1
    filtered = await client.get(USERS, params={"role": "operator"}, headers=admin_headers)
    assert [u["username"] for u in filtered.json()["data"]["items"]] == ["alice"]
    searched = await client.get(USERS, params={"keyword": "lic"}, headers=admin_headers)
    assert [u["username"] for u in searched.json()["data"]["items"]] == ["alice"]

    updated = await client.put(
        f"{USERS}/{alice['id']}", json={"phone": "+86 138 0000 0000"}, headers=admin_headers
    )
    assert updated.json()["data"]["phone"] == "+86 138 0000 0000"
    assert updated.json()["data"]["role"] == "operator"

    assert (await client.delete(f"{USERS}/{alice['id']}", headers=admin_headers)).status_code == 200
    gone = await client.get(f"{USERS}/{alice['id']}", headers=admin_headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == 6001


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("_b", ["ops_bob"]),  # LIKE wildcards are matched literally
        ("%", []),
        ("OPS", ["ops_bob", "opsxbob"]),  # case does not matter, on every database
    ],
)
async def test_keyword_is_a_literal_substring(
    client: httpx.AsyncClient, admin_headers: dict[str, str], keyword: str, expected: list[str]
) -> None:
    for name in ("ops_bob", "opsxbob"):
        await make_user(client, admin_headers, name)
    listed = await client.get(USERS, params={"keyword": keyword}, headers=admin_headers)
    assert [u["username"] for u in listed.json()["data"]["items"]] == expected


async def test_duplicate_username_or_email_is_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"username": "dup", "password": "Correct-Horse-9", "email": "d@example.com"}
    assert (await client.post(USERS, json=body, headers=admin_headers)).status_code == 201
    again = await client.post(USERS, json=body, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["code"] == 6002
    same_email = body | {"username": "dup2"}
    assert (await client.post(USERS, json=same_email, headers=admin_headers)).status_code == 409


@pytest.mark.parametrize("spelling", ["Admin", "ADMIN", "aDmIn"])
async def test_a_name_differing_only_in_letter_case_is_taken(
    client: httpx.AsyncClient, admin_headers: dict[str, str], spelling: str
) -> None:
    """A login cannot tell `Admin` from `admin`, so they cannot be two users (any database)."""
    body = {"username": spelling, "password": "Correct-Horse-9", "role": "admin"}
    response = await client.post(USERS, json=body, headers=admin_headers)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == 6002


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a", "password": "Correct-Horse-9"}, "body.username"),
        ({"username": "bad name!", "password": "Correct-Horse-9"}, "body.username"),
        # Letters outside the safe set, which some collation would read as another name.
        ({"username": "vìctim", "password": "Correct-Horse-9"}, "body.username"),
        ({"username": "vıctim", "password": "Correct-Horse-9"}, "body.username"),
        ({"username": "victim ", "password": "Correct-Horse-9"}, "body.username"),
        ({"username": "okname", "password": "Correct-Horse-9", "role": "root"}, "body.role"),
        ({"username": "okname", "password": "Correct-Horse-9", "email": "nope"}, "body.email"),
        ({"username": "okname", "password": "Correct-Horse-9", "extra": 1}, "body.extra"),
        ({"username": "okname"}, "body.password"),
    ],
)
async def test_invalid_user_input_names_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, object], field: str
) -> None:
    response = await client.post(USERS, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert field in {e["field"] for e in response.json()["data"]["errors"]}


@pytest.mark.parametrize(
    "password", ["short1A", "password123", "alllowercaseletters", "xx-okname-xx-1"]
)
async def test_password_policy(
    client: httpx.AsyncClient, admin_headers: dict[str, str], password: str
) -> None:
    response = await client.post(
        USERS, json={"username": "okname", "password": password}, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == 6004


async def test_last_active_admin_is_protected(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    me = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()["data"]
    url = f"{USERS}/{me['id']}"
    for attempt in (
        client.delete(url, headers=admin_headers),
        client.put(url, json={"status": 0}, headers=admin_headers),
        client.put(url, json={"role": "operator"}, headers=admin_headers),
    ):
        response = await attempt
        assert response.status_code == 409
        assert response.json()["code"] == 6003
    # With a second active admin, the first may step down.
    await make_user(client, admin_headers, "second", role="admin")
    assert (
        await client.put(url, json={"role": "operator"}, headers=admin_headers)
    ).status_code == 200


async def test_a_disabled_admin_does_not_count(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    other = await make_user(client, admin_headers, "other", role="admin")
    await client.put(f"{USERS}/{other['id']}", json={"status": 0}, headers=admin_headers)
    me = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()["data"]
    response = await client.delete(f"{USERS}/{me['id']}", headers=admin_headers)
    assert response.status_code == 409


async def test_admin_resets_a_password_and_ends_sessions(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    dave = await make_user(client, admin_headers, "dave")
    dave_headers = bearer((await login(client, "dave", "Str0ng-Password"))["token"])
    reset = await client.put(
        f"{USERS}/{dave['id']}", json={"password": "Brand-New-Pass-1"}, headers=admin_headers
    )
    assert reset.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=dave_headers)).status_code == 401
    assert (await login(client, "dave", "Brand-New-Pass-1"))["token"]


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", str(2**64)])
async def test_bad_ids_are_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_id: str
) -> None:
    response = await client.get(f"{USERS}/{user_id}", headers=admin_headers)
    assert response.status_code == 400


async def test_page_size_is_capped(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(USERS, params={"page_size": 101}, headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["data"]["errors"][0]["field"] == "query.page_size"
