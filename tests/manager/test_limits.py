"""Request limits: body size (by declared length and counted while streaming), per-route
upload limits, and the time a client may take to send its body or take its response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from opscaffold.manager.app import create_app
from opscaffold.manager.config import load_settings
from opscaffold.manager.limits import ResponseTimeout, takes_uploads

LOGIN = "/api/v1/auth/login"
UPLOAD = "/test-only/upload"
MAX_BODY, MAX_UPLOAD = 1024, 4096


def limited_app(tmp_path: Path, **env: str) -> FastAPI:
    """An app with small limits and one route that takes uploads; never started, so a request
    that passes the limits reaches only that route."""
    settings = load_settings(
        None,
        {
            "OPS_DATA_DIR": str(tmp_path),
            "OPS_SERVER__HTTP__MAX_BODY_SIZE": str(MAX_BODY),
            "OPS_SERVER__HTTP__MAX_UPLOAD_SIZE": str(MAX_UPLOAD),
            **env,
        },
    )
    app = create_app(settings, build_only=True)
    router = APIRouter()  # included, as the domain routers are

    @router.post(UPLOAD)
    @takes_uploads
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.include_router(router)
    return app


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://manager") as client:
        yield client


def _too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["code"] == 1010
    assert response.headers["connection"] == "close"


async def test_a_body_declared_too_large_is_413_before_it_is_read(
    http: httpx.AsyncClient,
) -> None:
    _too_large(await http.post(LOGIN, content=b"{" + b" " * MAX_BODY + b"}"))


async def _chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


async def test_a_streamed_body_is_counted_and_refused_past_the_limit(
    http: httpx.AsyncClient,
) -> None:
    # No Content-Length: sent chunked, so only counting the bytes can stop it.
    response = await http.post(LOGIN, content=_chunks(MAX_BODY * 4))
    _too_large(response)


async def test_a_route_that_takes_uploads_has_its_own_limit(http: httpx.AsyncClient) -> None:
    accepted = await http.post(UPLOAD, content=b"x" * (MAX_UPLOAD - 1))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"size": MAX_UPLOAD - 1}
    _too_large(await http.post(UPLOAD, content=b"x" * (MAX_UPLOAD + 1)))
    _too_large(await http.post(UPLOAD, content=_chunks(MAX_UPLOAD * 2)))
    # Everything else keeps the small limit.
    _too_large(await http.post(LOGIN, content=b"x" * (MAX_BODY + 1)))


async def test_a_body_that_does_not_arrive_in_time_is_408(tmp_path: Path) -> None:
    app = limited_app(tmp_path, OPS_SERVER__HTTP__READ_TIMEOUT="0.2s")
    sent: list[dict[str, object]] = []
    stalled = asyncio.Event()

    async def receive() -> dict[str, object]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": b"{", "more_body": True}
        await stalled.wait()  # the client sends nothing more
        return {"type": "http.disconnect"}

    messages: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    scope = _scope("POST", UPLOAD)
    async with asyncio.timeout(10):
        await app(scope, receive, send)
    assert messages[0]["status"] == 408
    assert (b"connection", b"close") in messages[0]["headers"]


async def test_a_client_that_does_not_take_its_response_is_dropped(tmp_path: Path) -> None:
    app = limited_app(tmp_path, OPS_SERVER__HTTP__WRITE_TIMEOUT="0.2s")

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        await asyncio.Event().wait()  # the client's window stays full

    with pytest.raises(ResponseTimeout):
        async with asyncio.timeout(10):
            await app(_scope("GET", "/livez"), receive, send)


def _scope(method: str, path: str) -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"manager")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
