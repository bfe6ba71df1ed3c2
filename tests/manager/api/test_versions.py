"""Versions over REST: signed uploads streamed to storage, the latest per platform, downloads
with Range for people and daemons, and removal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.app import all_jobs
from opscaffold.manager.enrollment.service import digest
from opscaffold.manager.jobs.runner import JobRunner, tick_of
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import AuditLog, NodeCredential, UpdateRecord, Version
from opscaffold.manager.version.storage import INCOMING
from opscaffold.protocol import manifest as signing
from opscaffold.protocol.manifest import Manifest
from tests.manager.conftest import Stack, bearer, login, make_user
from tests.manager.factories import add_node, count_rows

VERSIONS = "/api/v1/versions"
PACKAGE = b"#!/bin/sh\necho daemon\n" * 1000


def fields(version: str = "1.2.0", **extra: str) -> dict[str, str]:
    return {"component": "daemon", "version": version, "os": "linux", "arch": "amd64", **extra}


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    version: str = "1.2.0",
    content: bytes = PACKAGE,
    file_name: str = "ops-daemon.tar.gz",
    **extra: str,
) -> httpx.Response:
    return await client.post(
        VERSIONS,
        data=fields(version, **extra),
        files={"file": (file_name, content, "application/octet-stream")},
        headers=headers,
    )


def package_files(stack: Stack) -> list[Path]:
    """Every file under the storage folder, finished or not."""
    root = stack.settings.storage.local.path
    assert root is not None
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
async def store_files(stack: Stack, client: httpx.AsyncClient) -> set[Path]:
    """The storage's files before the test (the stack's folder outlives one test)."""
    return set(package_files(stack))


async def test_upload_is_signed_by_the_manager_and_readable_by_everyone(
    client: httpx.AsyncClient, stack: Stack, admin_headers: dict[str, str]
) -> None:
    created = await upload(client, admin_headers, release_notes="first")
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["file_size"] == len(PACKAGE)
    assert data["hash_sha256"] == hashlib.sha256(PACKAGE).hexdigest()
    assert data["file_name"] == "ops-daemon.tar.gz"
    assert data["is_latest"] is True
    assert data["key_fingerprint"] == stack.runtime.keys.fingerprint

    viewer = await make_user(client, admin_headers, "viewer1")
    viewer_headers = bearer((await login(client, viewer["username"], "Str0ng-Password"))["token"])
    read = (await client.get(f"{VERSIONS}/{data['id']}", headers=viewer_headers)).json()["data"]
    manifest = Manifest.model_validate(read["manifest"])
    assert manifest.size == len(PACKAGE)
    assert manifest.sha256 == data["hash_sha256"]
    assert (manifest.component, manifest.version) == ("daemon", "1.2.0")
    # A daemon checks it with the public key it was installed with.
    public = stack.runtime.keys.signing_key.public_key()
    assert signing.verify(manifest, base64.b64decode(read["signature"]), [public])

    listed = (await client.get(VERSIONS, headers=viewer_headers)).json()["data"]
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == data["id"]
    assert "signature" not in listed["items"][0]
    forbidden = await upload(client, viewer_headers, "1.3.0")
    assert forbidden.status_code == 403

    audit = await _audit(stack, "version.upload")
    assert audit[0]["status"] == "success"
    assert audit[0]["detail"]["version"] == "1.2.0"


async def _audit(stack: Stack, action: str) -> list[dict[str, Any]]:
    async with stack.runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(AuditLog.status, AuditLog.detail, AuditLog.resource_id)
            .where(AuditLog.action == action)
            .order_by(AuditLog.id)
        )
        return [dict(row._mapping) for row in rows]


async def test_latest_is_the_highest_version_per_platform_compared_as_versions(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ids = {}
    for version in ("1.9.0", "1.10.0", "1.10.0-rc.1", "1.2.0"):
        response = await upload(client, admin_headers, version)
        assert response.status_code == 201, response.text
        ids[version] = response.json()["data"]["id"]
    other = await upload(client, admin_headers, "0.1.0", arch="arm64")
    assert other.json()["data"]["is_latest"] is True  # another platform has its own latest

    async def latest() -> set[str]:
        page = await client.get(
            VERSIONS, params={"arch": "amd64", "page_size": 100}, headers=admin_headers
        )
        return {v["version"] for v in page.json()["data"]["items"] if v["is_latest"]}

    assert await latest() == {"1.10.0"}  # as text, "1.9.0" would win
    deleted = await client.delete(f"{VERSIONS}/{ids['1.10.0']}", headers=admin_headers)
    assert deleted.status_code == 200, deleted.text
    assert await latest() == {"1.10.0-rc.1"}  # a pre-release sorts after 1.9.0, before 1.10.0

    filtered = await client.get(
        VERSIONS, params={"component": "agent", "os": "linux"}, headers=admin_headers
    )
    assert filtered.json()["data"]["total"] == 0
    paged = await client.get(VERSIONS, params={"page_size": 2, "page": 2}, headers=admin_headers)
    assert paged.json()["data"]["total"] == 4
    assert len(paged.json()["data"]["items"]) == 2


async def test_duplicate_package_is_refused_and_keeps_no_file(
    client: httpx.AsyncClient,
    stack: Stack,
    admin_headers: dict[str, str],
    store_files: set[Path],
) -> None:
    assert (await upload(client, admin_headers)).status_code == 201
    after_first = set(package_files(stack))
    duplicate = await upload(client, admin_headers, content=b"other bytes")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == 3002
    assert set(package_files(stack)) == after_first
    assert len(after_first - store_files) == 1


async def test_pre_releases_differing_in_case_are_two_versions_on_every_database(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Pre-release identifiers are case-sensitive, as the version order compares them."""
    lower = await upload(client, admin_headers, version="1.0.0-rc.1")
    upper = await upload(client, admin_headers, version="1.0.0-RC.1", content=b"other bytes")
    assert (lower.status_code, upper.status_code) == (201, 201), upper.text
    listed = await client.get(VERSIONS, headers=admin_headers)
    versions = {item["version"] for item in listed.json()["data"]["items"]}
    assert versions == {"1.0.0-rc.1", "1.0.0-RC.1"}


async def test_offline_signature_is_checked_against_trusted_keys(
    client: httpx.AsyncClient, stack: Stack, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    created_at = "2026-12-05T06:00:00Z"
    manifest = Manifest(
        component="daemon",
        version="2.0.0",
        os="linux",
        arch="amd64",
        size=len(PACKAGE),
        sha256=hashlib.sha256(PACKAGE).hexdigest(),
        created_at=created_at,
    )
    good = base64.b64encode(signing.sign(manifest, stack.runtime.keys.signing_key)).decode()
    signed = await upload(client, admin_headers, "2.0.0", signature=good, created_at=created_at)
    assert signed.status_code == 201, signed.text
    assert signed.json()["data"]["manifest"]["created_at"] == created_at
    assert signed.json()["data"]["signature"] == good

    stranger = signing.generate_key()
    bad = base64.b64encode(signing.sign(manifest, stranger)).decode()
    untrusted = await upload(client, admin_headers, "2.0.1", signature=bad, created_at=created_at)
    assert untrusted.status_code == 400
    assert untrusted.json()["code"] == 3003
    # A genuine signature over other bytes (or another version) does not carry over.
    moved = await upload(client, admin_headers, "2.0.2", signature=good, created_at=created_at)
    assert moved.json()["code"] == 3003

    no_time = await upload(client, admin_headers, "2.0.3", signature=good)
    assert no_time.status_code == 400
    assert no_time.json()["data"]["errors"][0]["field"] == "body.created_at"
    only_time = await upload(client, admin_headers, "2.0.3", created_at=created_at)
    assert only_time.json()["data"]["errors"][0]["field"] == "body.created_at"
    not_base64 = await upload(
        client, admin_headers, "2.0.3", signature="not base64!", created_at=created_at
    )
    assert not_base64.json()["data"]["errors"][0]["field"] == "body.signature"


@pytest.mark.parametrize(
    ("extra", "file_name", "field"),
    [
        ({"version": "1.0; rm -rf"}, "p.tgz", "body.version"),
        ({"version": "v1.0.0"}, "p.tgz", "body.version"),
        ({"os": "plan9"}, "p.tgz", "body.os"),
        ({"component": "kernel"}, "p.tgz", "body.component"),
        ({"release_notes": "a\x00b"}, "p.tgz", "body.release_notes"),
        ({"surprise": "1"}, "p.tgz", "body.surprise"),
        ({}, "../../etc/passwd", "body.file"),
        ({}, "..", "body.file"),
        ({}, "dir\\name.tgz", "body.file"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_leaves_no_file(
    client: httpx.AsyncClient,
    stack: Stack,
    admin_headers: dict[str, str],
    store_files: set[Path],
    extra: dict[str, str],
    file_name: str,
    field: str,
) -> None:
    body = fields() | extra
    response = await client.post(
        VERSIONS,
        data=body,
        files={"file": (file_name, PACKAGE, "application/octet-stream")},
        headers=admin_headers,
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    assert response.json()["data"]["errors"][0]["field"] == field
    assert set(package_files(stack)) == store_files
    assert (await client.get(VERSIONS, headers=admin_headers)).json()["data"]["total"] == 0
    assert (await _audit(stack, "version.upload"))[-1]["status"] == "failed"


def raw_form(file_name: bytes, boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart body as a client may send it, byte for byte (httpx escapes file names)."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields().items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + file_name
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + PACKAGE
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("file_name", [b"evil\x00.tgz", b"../x.tgz", b"a\x1b[2J.tgz", b""])
async def test_file_names_with_nul_paths_or_controls_are_refused(
    client: httpx.AsyncClient,
    stack: Stack,
    admin_headers: dict[str, str],
    store_files: set[Path],
    file_name: bytes,
) -> None:
    body, content_type = raw_form(file_name)
    response = await client.post(
        VERSIONS, content=body, headers={**admin_headers, "Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert response.json()["data"]["errors"][0]["field"] == "body.file"
    assert set(package_files(stack)) == store_files


async def test_a_plain_raw_file_name_is_kept_for_display(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body, content_type = raw_form(b"ops-daemon_1.2.0 (linux).tgz")
    response = await client.post(
        VERSIONS, content=body, headers={**admin_headers, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["file_name"] == "ops-daemon_1.2.0 (linux).tgz"


async def test_missing_file_and_wrong_body_are_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    no_file = await client.post(VERSIONS, data=fields(), headers=admin_headers)
    # httpx sends a form without files as urlencoded: not multipart
    assert no_file.status_code == 400
    assert no_file.json()["data"]["errors"][0]["field"] == "body"
    boundary = "xyz"
    text_only = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="component"\r\n\r\ndaemon\r\n'
        f"--{boundary}--\r\n"
    )
    response = await client.post(
        VERSIONS,
        content=text_only.encode(),
        headers={**admin_headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert response.json()["data"]["errors"][0]["field"] == "body.file"


async def test_truncated_upload_is_refused_and_leaves_no_file(
    client: httpx.AsyncClient,
    stack: Stack,
    admin_headers: dict[str, str],
    store_files: set[Path],
) -> None:
    request = client.build_request(
        "POST",
        VERSIONS,
        data=fields(),
        files={"file": ("p.tgz", PACKAGE, "application/octet-stream")},
        headers=admin_headers,
    )
    whole = request.read()
    cut = whole[: len(whole) // 2]  # the closing boundary never comes
    headers = {**admin_headers, "Content-Type": request.headers["Content-Type"]}
    response = await client.post(VERSIONS, content=cut, headers=headers)
    assert response.status_code == 400
    assert "truncated" in response.json()["data"]["errors"][0]["message"]
    assert set(package_files(stack)) == store_files


async def test_upload_over_the_cap_is_refused_with_413_and_leaves_no_file(
    client: httpx.AsyncClient,
    stack: Stack,
    admin_headers: dict[str, str],
    store_files: set[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = _request_limits(stack)
    monkeypatch.setattr(limits, "max_upload", 64 * 1024)
    request = client.build_request(
        "POST", VERSIONS, data=fields(), files={"file": ("p.tgz", b"x" * (256 * 1024))}
    )
    body, content_type = request.read(), request.headers["Content-Type"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    response = await client.post(
        VERSIONS, content=chunked(), headers={**admin_headers, "Content-Type": content_type}
    )
    assert response.status_code == 413
    assert set(package_files(stack)) == store_files
    assert not any(INCOMING in str(p) for p in set(package_files(stack)) - store_files)


def _request_limits(stack: Stack) -> Any:
    """The RequestLimits middleware instance of the running app."""
    from opscaffold.manager.limits import RequestLimits

    layer: Any = stack.app.middleware_stack
    while layer is not None and not isinstance(layer, RequestLimits):
        layer = getattr(layer, "app", None)
    assert layer is not None
    return layer


async def test_download_supports_range_for_users_and_node_tokens(
    client: httpx.AsyncClient, stack: Stack, admin_headers: dict[str, str]
) -> None:
    created = (await upload(client, admin_headers)).json()["data"]
    url = f"{VERSIONS}/{created['id']}/download"
    whole = await client.get(url, headers=admin_headers)
    assert whole.status_code == 200
    assert whole.content == PACKAGE
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["x-checksum-sha256"] == created["hash_sha256"]

    node_id = await add_node(stack, "web-1")
    token = "osn_" + "t" * 40
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(NodeCredential).values(
                node_id=node_id, token_hash=digest(token), created_at=utcnow()
            )
        )
    resumed = await client.get(url, headers={**bearer(token), "Range": "bytes=1000-"})
    assert resumed.status_code == 206
    assert resumed.content == PACKAGE[1000:]
    assert resumed.headers["content-range"] == f"bytes 1000-{len(PACKAGE) - 1}/{len(PACKAGE)}"

    # A node token opens downloads only; a wrong or deleted one opens nothing.
    assert (await client.get(VERSIONS, headers=bearer(token))).status_code == 401
    assert (await client.get(url, headers=bearer("osn_wrong"))).status_code == 401
    assert (await client.get(url)).status_code == 401
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.delete(NodeCredential).where(NodeCredential.node_id == node_id))
    assert (await client.get(url, headers=bearer(token))).status_code == 401


async def test_delete_is_refused_while_a_rollout_uses_the_version(
    client: httpx.AsyncClient,
    stack: Stack,
    admin_headers: dict[str, str],
    store_files: set[Path],
) -> None:
    created = (await upload(client, admin_headers)).json()["data"]
    assert len(set(package_files(stack)) - store_files) == 1
    node_id = await add_node(stack, "web-1")
    record = {
        "batch_id": "b1",
        "node_id": node_id,
        "component": "daemon",
        "to_version": "1.2.0",
        "status": "downloading",
        "created_by": 1,
    }
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(UpdateRecord).values(**record))
    operator = await make_user(client, admin_headers, "op1", role="operator")
    op_headers = bearer((await login(client, operator["username"], "Str0ng-Password"))["token"])
    refused = await client.delete(f"{VERSIONS}/{created['id']}", headers=op_headers)
    assert refused.status_code == 403

    busy = await client.delete(f"{VERSIONS}/{created['id']}", headers=admin_headers)
    assert busy.status_code == 409
    assert busy.json()["code"] == 3004
    assert len(set(package_files(stack)) - store_files) == 1

    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.update(UpdateRecord).values(status="success"))
    gone = await client.delete(f"{VERSIONS}/{created['id']}", headers=admin_headers)
    assert gone.status_code == 200
    assert set(package_files(stack)) == store_files
    missing = await client.get(f"{VERSIONS}/{created['id']}", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 3001
    assert await count_rows(stack, UpdateRecord) == 1
    assert (await _audit(stack, "version.delete"))[-1]["status"] == "success"


async def test_manifest_json_is_the_exact_text_signed(
    client: httpx.AsyncClient, stack: Stack, admin_headers: dict[str, str]
) -> None:
    created = (await upload(client, admin_headers)).json()["data"]
    async with stack.runtime.engine.connect() as conn:
        from opscaffold.manager.models import Version

        stored = await conn.scalar(sa.select(Version.manifest).where(Version.id == created["id"]))
    assert stored is not None
    assert json.loads(stored) == created["manifest"]
    assert Manifest.model_validate(created["manifest"]).canonical().decode() == stored


async def test_concurrent_uploads_agree_on_one_latest(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    versions = [f"1.{minor}.0" for minor in range(8)]
    responses = await asyncio.gather(*(upload(client, admin_headers, v) for v in versions))
    assert [r.status_code for r in responses] == [201] * len(versions)
    page = await client.get(VERSIONS, headers=admin_headers)
    latest = [v["version"] for v in page.json()["data"]["items"] if v["is_latest"]]
    assert latest == ["1.7.0"]


async def test_an_upload_sent_as_json_is_refused_without_reading_it_whole(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """The body of an upload route is the route's to stream: a JSON type does not make the
    generic input check read it into memory first."""
    body = b'{"component": "daemon", "x": "\\u0000"}' + b" " * (2 * 1024 * 1024)
    response = await client.post(
        VERSIONS, content=body, headers={**admin_headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["data"]["errors"][0]["field"] == "body"
    assert "multipart/form-data" in response.json()["message"]


async def test_a_body_arriving_in_tiny_pieces_is_read_exactly(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Boundaries split across pieces are found; bytes that merely resemble one are data."""
    content = b"\r\n--b0undar\r\n-b0undary\r\n--b0undarx" + PACKAGE[:3000]
    body, content_type = raw_form(b"p.tgz")
    body = body.replace(PACKAGE, content)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = await client.post(
        VERSIONS, content=pieces(), headers={**admin_headers, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["hash_sha256"] == hashlib.sha256(content).hexdigest()
    url = f"{VERSIONS}/{response.json()['data']['id']}/download"
    assert (await client.get(url, headers=admin_headers)).content == content


async def test_the_sweep_removes_old_files_no_version_names(
    client: httpx.AsyncClient, stack: Stack, admin_headers: dict[str, str]
) -> None:
    """Left by an upload whose commit failed: the file is placed just before the commit."""
    created = (await upload(client, admin_headers)).json()["data"]
    root = stack.settings.storage.local.path
    assert root is not None
    named = root / (await _file_path(stack, created["id"]))
    old_orphan, young_orphan = root / f"{'a' * 32}.pkg", root / f"{'b' * 32}.pkg"
    old_orphan.write_bytes(b"x")
    young_orphan.write_bytes(b"x")
    two_hours_ago = utcnow().timestamp() - 7200
    for path in (named, old_orphan):
        os.utime(path, (two_hours_ago, two_hours_ago))
    job = all_jobs()["version.sweep_files"]
    runner = JobRunner(stack.runtime.sessions, stack.settings, {job.name: job}, "test-replica")
    assert await runner.run_once(job, tick_of(utcnow(), job.every(stack.settings)))
    assert named.exists()
    assert young_orphan.exists()  # may belong to a commit on its way
    assert not old_orphan.exists()
    young_orphan.unlink()


async def _file_path(stack: Stack, version_id: int) -> str:
    async with stack.runtime.sessions() as session:
        found = await session.get(Version, version_id)
    assert found is not None
    return found.file_path
