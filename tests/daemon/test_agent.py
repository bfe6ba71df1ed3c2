"""The Agent as a real process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from opscaffold.daemon import package_version
from tests.daemon.helpers import BIN, gone, health
from tests.helpers import free_port, poll_until


def wait_for_health(port: int, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    def answered() -> bool:
        assert proc.poll() is None, "agent exited"
        return health(port) is not None

    poll_until(answered, what="the agent answers /health")
    body = health(port)
    assert body is not None
    return body


@pytest.fixture(params=["module", "console-script"])
def agent(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    command = (
        [sys.executable, "-m", "opscaffold.daemon.agent"]
        if request.param == "module"
        else [str(BIN / "ops-daemon"), "agent"]
    )
    proc = subprocess.Popen([*command, "--port", str(port), "--host", "127.0.0.1"])
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_health_answers_with_pid_version_and_start(
    agent: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = agent
    before = int(time.time())
    body = wait_for_health(port, proc)
    assert body["status"] == "ok"
    assert body["pid"] == proc.pid
    assert body["version"] == package_version()
    assert isinstance(body["started_at"], int)
    assert before - 30 <= body["started_at"] <= time.time()


def test_other_routes_and_methods_are_refused(
    agent: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = agent
    wait_for_health(port, proc)
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/nope").status_code == 404
    assert httpx.post(f"{base}/health").status_code == 405
    assert httpx.get(f"{base}/health?verbose=1").status_code == 200
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"garbage\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400 ")


def test_sigterm_stops_it_cleanly(agent: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = agent
    wait_for_health(port, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_an_orphaned_agent_stops_by_itself() -> None:
    """Its daemon killed with SIGKILL, the agent must not keep the port."""
    port = free_port()
    launcher = (
        "import os, subprocess, sys, time;"
        "agent = subprocess.Popen([sys.executable, '-m', 'opscaffold.daemon.agent', '--port',"
        f" '{port}', '--host', '127.0.0.1', '--parent-pid', str(os.getpid())]);"
        "print(agent.pid, flush=True); time.sleep(120)"
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    agent_pid = int(parent.stdout.readline())
    try:
        poll_until(lambda: health(port) is not None, what="the agent answers /health")
        parent.kill()
        parent.wait()
        poll_until(lambda: gone(agent_pid), what="the orphaned agent stops")
    finally:
        if not gone(agent_pid):
            os.kill(agent_pid, signal.SIGKILL)
