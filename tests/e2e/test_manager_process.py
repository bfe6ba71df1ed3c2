"""The real `ops-manager` process on the embedded default, as `make run` starts it."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.processes import BIN, Manager

PASSWORD_LINE = re.compile(r"created user 'admin' with password: (\S+)")


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, {"OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024"})
    yield instance
    instance.ensure_stopped()


def test_serve_prints_admin_password_and_login_works(manager: Manager, tmp_path: Path) -> None:
    manager.start()
    match = PASSWORD_LINE.search(manager.log.read_text())
    assert match, manager.log.read_text()
    password = match.group(1)

    login = httpx.post(
        f"{manager.url}/api/v1/auth/login", json={"username": "admin", "password": password}
    )
    assert login.status_code == 200
    token = login.json()["data"]["token"]
    me = httpx.get(f"{manager.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["data"]["username"] == "admin"
    checks = httpx.get(f"{manager.url}/health").json()["checks"]
    assert checks == {"database": "ok", "redis": "disabled"}

    with grpc.insecure_channel(f"127.0.0.1:{manager.grpc_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    # Secrets were generated once and are private to the owner.
    secrets_dir = tmp_path / "secrets"
    assert {p.name for p in secrets_dir.iterdir()} == {
        "jwt_access_secret",
        "jwt_refresh_secret",
        "enrollment_token",
        "signing_key.pem",
        "task_signing_key.pem",
    }
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in secrets_dir.iterdir())
    # So is the database: password hashes and token digests.
    database = [tmp_path / f"manager.db{suffix}" for suffix in ("", "-wal", "-shm")]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in database} == {
        p.name: "0o600" for p in database
    }
    manager.stop()

    # A restart keeps the users and the secrets: the old token still works, no new password.
    manager.start()
    assert manager.log.read_text().count("created user 'admin'") == 1
    again = httpx.get(f"{manager.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 200
    manager.stop()


def test_admin_password_from_environment(tmp_path: Path) -> None:
    manager = Manager(tmp_path, {"OPS_ADMIN_PASSWORD": "Chosen-Passw0rd"})
    manager.start()
    try:
        assert "created user 'admin'" not in manager.log.read_text()
        login = httpx.post(
            f"{manager.url}/api/v1/auth/login",
            json={"username": "admin", "password": "Chosen-Passw0rd"},
        )
        assert login.status_code == 200
    finally:
        manager.stop()


def test_bad_config_stops_startup_naming_the_key(tmp_path: Path) -> None:
    env = {**os.environ, "OPS_DATA_DIR": str(tmp_path), "OPS_NODE__HEARTBEAT_TIMEOUT": "soon"}
    result = subprocess.run(
        [str(BIN / "ops-manager"), "serve"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "node.heartbeat_timeout" in result.stderr


def test_production_refuses_insecure_settings(tmp_path: Path) -> None:
    env = {**os.environ, "OPS_DATA_DIR": str(tmp_path), "OPS_ENV": "production"}
    result = subprocess.run(
        [str(BIN / "ops-manager"), "serve"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "auth.jwt.access_secret" in result.stderr


def test_user_commands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OPS_DATA_DIR": str(tmp_path),
        "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
    }

    def run(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"OPS_USER_PASSWORD": password} if password else {}
        return subprocess.run(
            [str(BIN / "ops-manager"), *args],
            env=env | extra,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("migrate").returncode == 0
    created = run("user", "create", "olga", "--role", "operator", password="Oslo-Winter-42")
    assert created.returncode == 0, created.stderr
    weak = run("user", "create", "pete", password="short")
    assert weak.returncode == 1
    assert "password must have" in weak.stderr
    duplicate = run("user", "create", "olga", password="Oslo-Winter-42")
    assert duplicate.returncode == 1
    assert run("user", "set-password", "olga", password="Newer-Passw0rd").returncode == 0
    missing = run("user", "set-password", "nobody", password="Newer-Passw0rd")
    assert missing.returncode == 1
    listing = run("user", "list").stdout
    assert re.search(r"olga\s+operator\s+enabled", listing)


def test_enrollment_token_commands(tmp_path: Path) -> None:
    env = {**os.environ, "OPS_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "ops-manager"), *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("migrate").returncode == 0
    created = run("enrollment-token", "create", "rack-7", "--max-uses", "3")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("ose_")
    listing = run("enrollment-token", "list").stdout
    assert "rack-7" in listing
    assert token not in listing
    assert "0/3" in listing
    assert run("enrollment-token", "revoke", "1").returncode == 0
    assert "revoked" in run("enrollment-token", "list").stdout
    assert run("enrollment-token", "revoke", "42").returncode == 1


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the Manager sends until it closes the connection (fails past `timeout`)."""
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_trickled_body_is_cut_off_after_the_read_timeout(tmp_path: Path) -> None:
    manager = Manager(tmp_path, {"OPS_SERVER__HTTP__READ_TIMEOUT": "1s"})
    manager.start()
    try:
        with socket.create_connection(("127.0.0.1", manager.http_port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: manager\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            started = time.monotonic()
            closed = False
            # A byte every 0.2 s, as a slow-body client sends it, for longer than the limit.
            while time.monotonic() - started < 20:
                try:
                    sock.sendall(b" ")
                except OSError:  # reset: the Manager closed it
                    closed = True
                    break
                readable, _, _ = select.select([sock], [], [], 0.2)
                if readable:
                    break
            answer = b"" if closed else _read_until_closed(sock, timeout=10)
        assert closed or answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - started < 10
        if answer:
            assert b'"code":1011' in answer
    finally:
        manager.stop()


def test_a_huge_declared_body_is_refused_without_being_read(manager: Manager) -> None:
    manager.start()
    with socket.create_connection(("127.0.0.1", manager.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: manager\r\n"
            b"Content-Type: application/json\r\nContent-Length: 157286400\r\n\r\n{"
        )
        answer = _read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":1010' in answer


def test_a_connection_whose_request_head_never_completes_is_closed(tmp_path: Path) -> None:
    manager = Manager(tmp_path, {"OPS_SERVER__HTTP__READ_TIMEOUT": "1s"})
    manager.start()
    try:
        silent = socket.create_connection(("127.0.0.1", manager.http_port), timeout=10)
        partial = socket.create_connection(("127.0.0.1", manager.http_port), timeout=10)
        with silent, partial:
            partial.sendall(b"GET /livez HTTP/1.1\r\nHost: manager\r\n")  # no blank line
            started = time.monotonic()
            assert _read_until_closed(silent, timeout=10) == b""
            assert _read_until_closed(partial, timeout=10) == b""
            assert time.monotonic() - started < 10
        # A request that completes in time is served as ever, on a kept-alive connection.
        with httpx.Client(base_url=manager.url) as client:
            assert client.get("/livez").status_code == 200
            assert client.get("/livez").status_code == 200
    finally:
        manager.stop()
