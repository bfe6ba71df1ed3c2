"""The API frame: envelope, request ids, error contract, headers."""

from __future__ import annotations

import httpx

from tests.manager.conftest import Stack


async def test_login_returns_envelope_with_request_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        json={"username": "admin", "password": "Admin-Passw0rd!"},
        headers={"X-Request-ID": "trace-123"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 0
    assert body["message"] == "ok"
    assert body["request_id"] == "trace-123"
    assert response.headers["x-request-id"] == "trace-123"
    assert body["data"]["token"]
    assert body["data"]["refresh_token"]


async def test_generates_request_id_when_missing_or_unsafe(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nope", headers={"X-Request-ID": "bad id <script>"})
    generated = response.headers["x-request-id"]
    assert len(generated) == 32
    assert generated.isalnum()
    assert response.json()["request_id"] == generated


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json()["code"] == 1004


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.json()["code"] == 1007


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"username": "admin", ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == 1001


async def test_wrong_content_type_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b"username=admin&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == 1001


async def test_validation_error_names_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login", json={"username": ""})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 1001
    fields = {e["field"] for e in body["data"]["errors"]}
    assert fields == {"body.username", "body.password"}
    assert "body.username" in body["message"]


async def test_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_backend_is_what_it_says(stack: Stack) -> None:
    # Guards the matrix itself: each parametrised stack really runs on its database.
    dialect = stack.runtime.engine.dialect.name
    assert (
        dialect == {"sqlite": "sqlite", "mysql": "mysql", "postgres": "postgresql"}[stack.backend]
    )
