"""The real `ops-manager` process on the embedded default, as `make run` starts it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

BIN = Path(sys.executable).parent
PASSWORD_LINE = re.compile(r"created user 'admin' with password: (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class Manager:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "OPS_DATA_DIR": str(data_dir),
            "OPS_SERVER__HTTP__ADDR": f"127.0.0.1:{self.http_port}",
            "OPS_SERVER__GRPC__ADDR": f"127.0.0.1:{self.grpc_port}",
            **env,
        }
        self.log = data_dir / "manager.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "ops-manager"), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._live)

    def _live(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"manager exited:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/livez", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """SIGTERM, as a service manager sends it: the Manager shuts down cleanly (uvicorn
        then re-raises the signal, so the exit status says SIGTERM, not a crash)."""
        assert self.proc is not None
        before = self.log.read_text().count('"manager stopped"')
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        assert code in (0, -signal.SIGTERM), code
        assert self.log.read_text().count('"manager stopped"') == before + 1


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, {"OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024"})
    yield instance
    if instance.proc and instance.proc.poll() is None:
        instance.proc.kill()
        instance.proc.wait()


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
    assert httpx.get(f"{manager.url}/health").json()["checks"] == {"database": "ok"}

    with grpc.insecure_channel(f"127.0.0.1:{manager.grpc_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    # Secrets were generated once and are private to the owner.
    secrets_dir = tmp_path / "secrets"
    assert {p.name for p in secrets_dir.iterdir()} == {"jwt_access_secret", "jwt_refresh_secret"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in secrets_dir.iterdir())
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
