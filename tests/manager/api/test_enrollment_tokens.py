"""Enrollment tokens over REST: the secret is shown once, then only its prefix."""

from __future__ import annotations

import httpx

TOKENS = "/api/v1/enrollment-tokens"


async def test_create_list_revoke(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    created = await client.post(
        TOKENS,
        json={"name": "rack-12", "max_uses": 5, "expires_at": "2999-01-01T00:00:00Z"},
        headers=admin_headers,
    )
    assert created.status_code == 201
    body = created.json()["data"]
    assert body["token"].startswith("ose_")
    assert body["token_prefix"] == body["token"][:8]
    assert body["expires_at"] == "2999-01-01T00:00:00Z"

    listed = (await client.get(TOKENS, headers=admin_headers)).json()["data"]
    mine = next(t for t in listed if t["id"] == body["id"])
    assert "token" not in mine
    assert body["token"] not in str(listed)  # the secret is never shown again

    revoked = await client.delete(f"{TOKENS}/{body['id']}", headers=admin_headers)
    assert revoked.json()["data"]["revoked_at"] is not None
    missing = await client.delete(f"{TOKENS}/999999", headers=admin_headers)
    assert missing.status_code == 404


async def test_invalid_tokens_are_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    past = await client.post(
        TOKENS, json={"name": "old", "expires_at": "2000-01-01T00:00:00Z"}, headers=admin_headers
    )
    assert past.status_code == 400
    naive = await client.post(
        TOKENS, json={"name": "tz", "expires_at": "2999-01-01T00:00:00"}, headers=admin_headers
    )
    assert naive.status_code == 400
    assert naive.json()["data"]["errors"][0]["field"] == "body.expires_at"
