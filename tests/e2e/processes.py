"""Real Manager and daemon processes on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, poll_until

BIN = Path(sys.executable).parent


class Manager:
    def __init__(self, data_dir: Path, env: dict[str, str], *, ca: Path | None = None) -> None:
        """`ca`: the CA that signed the Manager's certificate, when `env` turns TLS on."""
        self.ca = ca
        self.data_dir = data_dir
        self.http_port, self.grpc_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "OPS_DATA_DIR": str(data_dir),
            "OPS_SERVER__HTTP__ADDR": f"127.0.0.1:{self.http_port}",
            "OPS_SERVER__GRPC__ADDR": f"127.0.0.1:{self.grpc_port}",
            # The tests poll the API from one address far faster than people do; the limit
            # has tests of its own (a test that wants it sets these again).
            "OPS_RATE_LIMIT__PER_IP_PER_MINUTE": "100000",
            "OPS_RATE_LIMIT__PER_USER_PER_MINUTE": "100000",
            **env,
        }
        self.log = data_dir / "manager.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ca else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until it answers `/livez` (`timeout`: generous, because on a busy
        machine imports and migrations alone may take tens of seconds)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "ops-manager"), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            poll_until(self._live, timeout=timeout, what="the Manager answers /livez")
        except AssertionError:
            self.ensure_stopped()  # no fixture's teardown runs for a process never handed out
            raise

    def _live(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"manager exited:\n{self.log.read_text()}")
        try:
            verify = ssl.create_default_context(cafile=self.ca) if self.ca else True
            return httpx.get(f"{self.url}/livez", timeout=1, verify=verify).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def ensure_stopped(self) -> None:
        """At the end of a test: kill the process if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def stop(self) -> None:
        """SIGTERM, as a service manager sends it: the Manager shuts down cleanly (uvicorn
        then re-raises the signal, so the exit status says SIGTERM, not a crash)."""
        assert self.proc is not None
        before = self.log.read_text().count('"manager stopped"')
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        assert code in (0, -signal.SIGTERM), code
        assert self.log.read_text().count('"manager stopped"') == before + 1


class Api:
    """The Manager's REST API as an admin."""

    def __init__(self, manager: Manager, password: str) -> None:
        self.base = f"{manager.url}/api/v1"
        login = httpx.post(
            f"{self.base}/auth/login", json={"username": "admin", "password": password}
        )
        login.raise_for_status()
        self.headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}{path}", params=params, headers=self.headers)
        response.raise_for_status()
        return response.json()["data"]

    def send(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.base}{path}", json=body, headers=self.headers)
        response.raise_for_status()
        return response.json()["data"]


class Daemon:
    """A real `ops-daemon run` process (which starts its real Agent)."""

    def __init__(self, manager: Manager, state_dir: Path, token: str, *extra: str) -> None:
        self.state_dir = state_dir
        self.log = state_dir.parent / f"{state_dir.name}.log"
        self.agent_port = free_port()
        self.args = [
            str(BIN / "ops-daemon"), "run",
            "--manager", f"127.0.0.1:{manager.grpc_port}",
            "--enrollment-token", token,
            "--state-dir", str(state_dir),
            "--port", str(self.agent_port),
            "--log-level", "debug",
            *extra,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
