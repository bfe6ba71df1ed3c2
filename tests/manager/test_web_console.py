"""The Manager serves the built web console at `/`, beside the API and the probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from opscaffold.manager.app import create_app
from opscaffold.manager.ui.serve import IMMUTABLE, UI_CSP
from tests.manager.conftest import Stack

pytestmark = [pytest.mark.parametrize("stack", ["sqlite"], indirect=True), pytest.mark.timeout(60)]

INDEX = '<!doctype html><html><body><div id="root"></div></body></html>'
SCRIPT = "console.log('console');"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A build as `make web` leaves it: index.html, hashed assets, unhashed public files."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-3f9a1c.js").write_text(SCRIPT)
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


async def _client(stack: Stack, web_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stack.settings, runtime=stack.runtime, web_dir=web_dir)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://manager") as http:
        yield http


@pytest.fixture
async def web(stack: Stack, built: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(stack, built):
        yield http


async def test_root_serves_index_uncached_with_a_csp(web: httpx.AsyncClient) -> None:
    response = await web.get("/")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-security-policy"] == UI_CSP
    assert "script-src 'self';" in UI_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/nodes", "/nodes/42", "/login", "/nodes?status=online"])
async def test_client_routes_fall_back_to_index(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_for_good(web: httpx.AsyncClient) -> None:
    response = await web.get("/assets/index-3f9a1c.js")
    assert response.status_code == 200
    assert response.text == SCRIPT
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == IMMUTABLE
    head = await web.head("/assets/index-3f9a1c.js")
    assert head.status_code == 200
    assert head.headers["cache-control"] == IMMUTABLE


async def test_unhashed_files_are_revalidated(web: httpx.AsyncClient) -> None:
    response = await web.get("/favicon.svg")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


async def test_a_missing_asset_is_404_not_the_page(web: httpx.AsyncClient) -> None:
    response = await web.get("/assets/index-old.js")
    assert response.status_code == 404
    assert INDEX not in response.text


async def test_paths_outside_the_build_are_not_served(web: httpx.AsyncClient, built: Path) -> None:
    (built.parent / "secret.txt").write_text("secret")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        response = await web.get(path)
        assert "secret" not in response.text, path


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1/nope", "/api/v1/nodes/1/nope", "/metrics/x", "/health/x", "/livez/x"]
)
async def test_server_paths_never_fall_back(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == 1004


async def test_api_probes_and_metrics_still_answer(web: httpx.AsyncClient) -> None:
    assert (await web.get("/livez")).status_code == 200
    assert (await web.get("/health")).headers["content-type"].startswith("application/json")
    assert (await web.get("/readyz")).headers["content-type"].startswith("application/json")
    assert "# HELP" in (await web.get("/metrics")).text
    login = await web.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    assert login.headers["content-type"].startswith("application/json")
    # A wrong method on an API route stays a 405, and a POST never reaches the files.
    assert (await web.delete("/api/v1/auth/login")).status_code == 405
    assert (await web.post("/nodes")).status_code == 404


async def test_without_a_build_root_explains_itself(stack: Stack, tmp_path: Path) -> None:
    async for http in _client(stack, tmp_path / "missing"):
        response = await http.get("/")
        assert response.status_code == 404
        assert "make web" in response.text
        assert (await http.get("/nodes/3")).status_code == 404
        assert (await http.get("/livez")).status_code == 200
