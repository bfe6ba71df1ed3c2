"""Release packages through a real `ops-manager serve`: a large upload streamed to disk with an
offline signature, and a daemon resuming its download with its own node token."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opscaffold.protocol import manifest as signing
from opscaffold.protocol.manifest import Manifest
from tests.e2e.processes import BIN, Api, Daemon, Manager
from tests.helpers import poll_until

ADMIN_PASSWORD = "E2e-Admin-Passw0rd"
ENROLLMENT_TOKEN = "ose_e2e-enrollment-token-0123456789"
SIZE = 64 * 1024 * 1024
CHUNK = 1024 * 1024
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def cli(data_dir: Path, *args: str, **extra: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "OPS_DATA_DIR": str(data_dir), **extra}
    done = subprocess.run(
        [str(BIN / "ops-manager"), *args], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def package_chunks() -> Iterator[bytes]:
    """SIZE bytes, the same every time, without holding them in memory."""
    for index in range(SIZE // CHUNK):
        yield hashlib.sha256(str(index).encode()).digest() * (CHUNK // 32)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def multipart(boundary: str, fields: dict[str, str]) -> Iterator[bytes]:
    for name, value in fields.items():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="ops-daemon-3.1.0.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    yield from package_chunks()
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[Manager, Path]]:
    keys = tmp_path / "offline"
    keys.mkdir()
    cli(keys, "keys", "generate", "--out", str(keys / "offline.pem"))
    public = keys / "offline.pub"
    public.write_text(cli(keys, "keys", "export-public", "--key", str(keys / "offline.pem")))
    # A partial upload a stopped Manager left a day ago: removed at start.
    stale = tmp_path / "versions" / ".incoming" / "0123abcd.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    instance = Manager(
        tmp_path,
        {
            "OPS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "OPS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
            "OPS_STORAGE__TRUSTED_KEYS": str(public),
            "OPS_SERVER__HTTP__READ_TIMEOUT": "120s",
            "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
            "OPS_LOG__LEVEL": "warning",
        },
    )
    instance.start()
    yield instance, keys
    instance.ensure_stopped()


def test_large_offline_signed_upload_streams_and_a_daemon_resumes_its_download(
    manager: tuple[Manager, Path], tmp_path: Path
) -> None:
    server, keys = manager
    assert list((tmp_path / "versions" / ".incoming").iterdir()) == []
    # The Manager made its own signing key at first start, readable by its owner only.
    own_key = tmp_path / "secrets" / "signing_key.pem"
    assert stat.S_IMODE(own_key.stat().st_mode) == 0o600
    trusted = {"OPS_STORAGE__TRUSTED_KEYS": str(keys / "offline.pub")}
    listed = cli(tmp_path, "keys", "list", **trusted).splitlines()
    assert [line.split("  ", 1)[1] for line in listed] == [
        "manager signing key",
        str(keys / "offline.pub"),
    ]
    package = tmp_path / "package.bin"
    with package.open("wb") as out:
        for chunk in package_chunks():
            out.write(chunk)
    expected = hashlib.sha256(package.read_bytes()).hexdigest()
    options = ["--component", "daemon", "--version", "3.1.0", "--os", "linux", "--arch", "amd64"]
    signed = json.loads(
        cli(keys, "keys", "sign", str(package), *options, "--key", str(keys / "offline.pem"))
    )
    assert signed["manifest"]["sha256"] == expected

    api = Api(server, ADMIN_PASSWORD)
    assert server.proc is not None
    before = peak_rss(server.proc.pid)
    boundary = "e2e-boundary-7f3a"
    fields = {
        "component": "daemon",
        "version": "3.1.0",
        "os": "linux",
        "arch": "amd64",
        "signature": signed["signature"],
        "created_at": signed["manifest"]["created_at"],
    }
    response = httpx.post(
        f"{api.base}/versions",
        content=multipart(boundary, fields),  # chunked: no length known in advance
        headers={**api.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert created["file_size"] == SIZE
    assert created["hash_sha256"] == expected
    # Streamed to disk: the Manager never held the package in memory.
    assert peak_rss(server.proc.pid) - before < SIZE // 2

    public = signing.load_public_key((keys / "offline.pub").read_bytes())
    detail = api.get(f"/versions/{created['id']}")
    assert detail["manifest"] == signed["manifest"]
    assert signing.verify(
        Manifest.model_validate(detail["manifest"]), base64.b64decode(detail["signature"]), [public]
    )

    daemon = Daemon(server, tmp_path / "node-a", ENROLLMENT_TOKEN)
    daemon.start()
    try:
        state = tmp_path / "node-a" / "node.json"
        poll_until(lambda: state.exists() and json.loads(state.read_text()).get("node_token"))
        token = json.loads(state.read_text())["node_token"]
    finally:
        daemon.stop()
    url = f"{api.base}/versions/{created['id']}/download"
    node = {"Authorization": f"Bearer {token}"}
    first = httpx.get(url, headers={**node, "Range": "bytes=0-9999999"}, timeout=60)
    assert first.status_code == 206
    assert len(first.content) == 10_000_000
    rest = httpx.get(url, headers={**node, "Range": f"bytes={len(first.content)}-"}, timeout=60)
    assert rest.status_code == 206
    assert hashlib.sha256(first.content + rest.content).hexdigest() == expected
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_an_upload_cut_short_leaves_no_file_and_is_audited_as_refused(
    manager: tuple[Manager, Path], tmp_path: Path
) -> None:
    server, _ = manager
    api = Api(server, ADMIN_PASSWORD)
    boundary = "cut-boundary"
    fields = {"component": "daemon", "version": "3.2.0", "os": "linux", "arch": "amd64"}
    head = b"".join(multipart(boundary, fields))[: 4 * CHUNK]  # a quarter of the way in
    request = (
        "POST /api/v1/versions HTTP/1.1\r\nHost: manager\r\n"
        f"Authorization: {api.headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {SIZE + 4096}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
        sock.sendall(request + head)
        incoming = tmp_path / "versions" / ".incoming"
        poll_until(lambda: any(incoming.glob("*.part")), what="the upload is being written")

    def refusal() -> dict[str, Any] | None:
        logs = api.get("/system/audit-logs", action="version.upload")["items"]
        return next((row for row in logs if row["status"] == "failed"), None)

    row = poll_until(refusal, what="the cut upload is audited")
    assert row["error_message"].startswith("1001: ")
    assert "cut short" in row["error_message"]
    assert list(incoming.glob("*")) == []
    assert list((tmp_path / "versions").glob("*.pkg")) == []
    assert '"unhandled error"' not in server.log.read_text()
