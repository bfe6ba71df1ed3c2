"""The supervisor with real agent processes: started, killed, restarted, stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from opscaffold.daemon import package_version
from opscaffold.daemon.supervisor import AgentSupervisor
from tests.daemon.helpers import gone
from tests.helpers import free_port, wait_until


def agent_command(port: int) -> list[str]:
    module = [sys.executable, "-m", "opscaffold.daemon.agent"]
    return [*module, "--port", str(port), "--host", "127.0.0.1"]


async def health_pid(port: int) -> int | None:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except httpx.TransportError:
        return None
    pid: int = response.json()["pid"]
    return pid


async def wait_for_health_pid(port: int, pid: int) -> None:
    async def answers() -> bool:
        return await health_pid(port) == pid

    await wait_until(answers, what=f"agent {pid} answers on {port}")


class Running:
    def __init__(self, command: Sequence[str], stop_grace: float = 5.0) -> None:
        self.supervisor = AgentSupervisor(command, version=package_version(), stop_grace=stop_grace)
        self.task = asyncio.create_task(self.supervisor.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def pid(self) -> int:
        await wait_until(lambda: self.supervisor.snapshot().status == "running")
        pid = self.supervisor.pid
        assert pid is not None
        return pid


@pytest.fixture
async def port() -> int:
    return free_port()


@pytest.fixture
async def running(port: int) -> AsyncIterator[Running]:
    handle = Running(agent_command(port))
    yield handle
    await handle.stop()


async def test_starts_the_agent_and_describes_it(running: Running, port: int) -> None:
    pid = await running.pid()
    await wait_for_health_pid(port, pid)
    snapshot = running.supervisor.snapshot()
    assert snapshot.status == "running"
    assert snapshot.pid == pid
    assert snapshot.version == package_version()
    assert snapshot.memory_usage > 1_000_000  # a Python process: megabytes of RSS
    assert snapshot.cpu_usage >= 0.0
    assert abs(snapshot.start_time - time.time()) < 30
    assert snapshot.restart_count == 0
    assert snapshot.message().status == "running"


async def test_a_killed_agent_is_restarted_with_a_new_pid(running: Running, port: int) -> None:
    first = await running.pid()
    await wait_for_health_pid(port, first)
    os.kill(first, signal.SIGKILL)

    await wait_until(lambda: running.supervisor.restart_count == 1)
    second = await running.pid()
    assert second != first
    await wait_for_health_pid(port, second)
    snapshot = running.supervisor.snapshot()
    assert snapshot.last_error.startswith("agent killed by SIGKILL")
    assert snapshot.pid == second
    assert gone(first)


async def test_stopping_stops_the_agent(running: Running, port: int) -> None:
    pid = await running.pid()
    await wait_for_health_pid(port, pid)
    await running.stop()
    assert gone(pid)
    assert running.supervisor.snapshot().status == "stopped"
    assert running.supervisor.snapshot().pid == 0


async def test_a_requested_restart_replaces_the_agent(running: Running, port: int) -> None:
    first = await running.pid()
    await wait_for_health_pid(port, first)
    running.supervisor.request_restart()
    await wait_until(lambda: running.supervisor.restart_count == 1)
    second = await running.pid()
    assert second != first
    await wait_for_health_pid(port, second)
    assert running.supervisor.snapshot().last_error == ""
    assert gone(first)


async def test_an_agent_that_cannot_start_is_retried_and_explained(port: int) -> None:
    # Something else holds the port, so every start of the agent fails.
    with socket.create_server(("127.0.0.1", port)):
        handle = Running(agent_command(port))
        try:
            await wait_until(lambda: handle.supervisor.restart_count >= 2)
            snapshot = handle.supervisor.snapshot()
            assert "address already in use" in snapshot.last_error
            assert "exited with code 1" in snapshot.last_error
        finally:
            await handle.stop()


async def test_an_agent_ignoring_sigterm_is_killed_after_the_grace() -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)",
    ]
    handle = Running(stubborn, stop_grace=0.5)
    pid = await handle.pid()
    await handle.stop()
    assert gone(pid)


async def test_an_agent_error_is_reported_without_nul_characters() -> None:
    """The Manager refuses a heartbeat with a NUL in any string: an agent's stderr is cleaned."""
    script = "import sys; sys.stderr.write('bad\\x00 start\\n'); sys.exit(3)"
    handle = Running([sys.executable, "-c", script])
    try:
        await wait_until(lambda: handle.supervisor.restart_count >= 1)
        last_error = handle.supervisor.snapshot().last_error
        assert "bad start" in last_error
        assert "\x00" not in last_error
    finally:
        await handle.stop()
