"""The API frame: envelope, request ids, error contract, headers."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
import sqlalchemy.exc

from opscaffold.manager.app import create_app
from opscaffold.manager.config import load_settings
from opscaffold.manager.kit.counters import MemoryCounters
from opscaffold.manager.models import AuditLog
from opscaffold.manager.user import service as user_service
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


async def test_unhandled_error_is_500_without_internals(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*_: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(user_service, "get", explode)
    response = await client.get("/api/v1/auth/me", headers=admin_headers)
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == 1006
    assert "secret" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


async def test_database_error_is_5001(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise sqlalchemy.exc.OperationalError("SELECT secret", {}, Exception("gone"))

    monkeypatch.setattr(user_service, "get", broken)
    response = await client.get("/api/v1/auth/me", headers=admin_headers)
    assert response.status_code == 500
    assert response.json()["code"] == 5001
    assert "SELECT" not in response.text


async def test_rate_limit_per_ip(
    client: httpx.AsyncClient, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack.settings.rate_limit, "per_ip_per_minute", 3)
    statuses = [(await client.get("/api/v1/auth/me")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = await client.get("/api/v1/auth/me")
    assert limited.json()["code"] == 1005
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another address has its own budget.
    other = httpx.ASGITransport(app=stack.app, client=("198.51.100.9", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://manager") as second:
        assert (await second.get("/api/v1/auth/me")).status_code == 401


async def test_rate_limit_per_user(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stack.settings.rate_limit, "per_user_per_minute", 2)
    statuses = [
        (await client.get("/api/v1/auth/me", headers=admin_headers)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_counters_live_in_redis_when_configured(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    await client.get("/api/v1/auth/me")
    if stack.runtime.redis is None:  # the embedded default counts in process
        assert isinstance(stack.runtime.counters, MemoryCounters)
        return
    keys = [k async for k in stack.runtime.redis.scan_iter(match="ops:cnt:ip:*")]
    assert keys, "the per-IP counter should live in Redis, shared by every replica"


async def test_cors_allows_only_configured_origins(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    settings = load_settings(
        None,
        {
            "OPS_DATA_DIR": str(tmp_path),
            "OPS_SERVER__HTTP__CORS_ORIGINS": "https://ops.example.com",
        },
    )
    app = create_app(settings, runtime=stack.runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://manager") as http:
        preflight = {"Access-Control-Request-Method": "GET"}
        allowed = await http.options(
            "/api/v1/auth/me", headers={"Origin": "https://ops.example.com", **preflight}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://ops.example.com"
        refused = await http.options(
            "/api/v1/auth/me", headers={"Origin": "https://evil.example.com", **preflight}
        )
        assert "access-control-allow-origin" not in refused.headers


LOGIN = "/api/v1/auth/login"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"username": "ad\\u0000min", "password": "x"}', "body.username"),
        ('{"username": "admin", "password": "\\ud800"}', "body.password"),  # a lone surrogate
        ('{"username": "admin", "password": "x", "extra\\u0000": 1}', "body.extra"),
    ],
)
@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", "application/x+json"]
)
async def test_text_no_database_can_store_is_400_naming_the_field(
    client: httpx.AsyncClient, body: str, field: str, content_type: str
) -> None:
    response = await client.post(LOGIN, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    assert field in response.json()["message"]


async def test_nul_in_queries_paths_and_nested_bodies_is_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    users = "/api/v1/system/users"
    searched = await client.get(users, params={"keyword": "a\x00"}, headers=admin_headers)
    assert (searched.status_code, searched.json()["code"]) == (400, 1001)
    assert "keyword" in searched.json()["message"]
    tags = await client.put(
        "/api/v1/nodes/1", json={"tags": ["ok", "b\x00d"]}, headers=admin_headers
    )
    assert (tags.status_code, tags.json()["code"]) == (400, 1001)
    assert "body.tags.1" in tags.json()["message"]
    command = await client.get(f"/api/v1/commands/{'a' * 35}%00", headers=admin_headers)
    assert (command.status_code, command.json()["code"]) == (400, 1001)
    assert "path.id" in command.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/commands", {"node_ids": [2**63], "type": "ping"}),
        ("POST", "/api/v1/commands", {"node_ids": [2**70], "type": "ping"}),
        (
            "POST",
            "/api/v1/enrollment-tokens",
            {"name": "t", "expires_at": "9999-12-31T23:00:00-14:00"},
        ),
        (
            "POST",
            "/api/v1/enrollment-tokens",
            {"name": "t", "expires_at": "0001-01-01T00:30:00+01:00"},
        ),
        ("PUT", "/api/v1/nodes/1", {"group_id": -(2**64)}),
    ],
)
async def test_values_beyond_what_the_columns_hold_are_400(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    body: dict[str, object],
) -> None:
    response = await client.request(method, path, json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001


@pytest.mark.parametrize(
    "params",
    [
        {"start": "9999-12-31T23:00:00-14:00"},
        {"end": "0001-01-01T00:00:00+14:00"},
    ],
)
async def test_query_times_beyond_what_the_columns_hold_are_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str], params: dict[str, str]
) -> None:
    for path in ("/api/v1/system/audit-logs", "/api/v1/metrics/trend"):
        response = await client.get(path, params=params, headers=admin_headers)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == 1001


async def test_a_refused_unstorable_path_id_is_still_audited(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    response = await client.delete("/api/v1/nodes/1%00", headers=admin_headers)
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    async with stack.runtime.sessions() as session:
        rows = (
            await session.execute(
                sa.select(AuditLog.status, AuditLog.resource_id).where(
                    AuditLog.action == "node.delete"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("failed", None)]
