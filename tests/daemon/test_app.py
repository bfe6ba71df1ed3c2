"""The daemon as a whole, in process and as `ops-daemon run`, with no Manager listening: it
keeps its agent up, keeps its reports, and stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import psutil

from opscaffold.daemon.app import Daemon
from opscaffold.daemon.config import load_config
from tests.daemon.helpers import BIN, closed_port_target, gone, health
from tests.helpers import free_port, poll_until, wait_until


async def test_daemon_runs_and_stops_with_its_agent(tmp_path: Path) -> None:
    port = free_port()
    config = load_config(
        None,
        {
            "manager": closed_port_target(),
            "enrollment_token": "t",
            "state_dir": tmp_path / "state",
            "agent_port": port,
            "agent_host": "127.0.0.1",
        },
    )
    daemon = Daemon(config)
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: daemon.supervisor.snapshot().status == "running")
        pid = daemon.supervisor.pid
        await wait_until(lambda: daemon.session is not None and daemon.session.outbox.pending())
        assert daemon.session is not None
        heartbeat = daemon.session.outbox.pending()[0].message
        assert heartbeat.agent_status.status == "running"  # type: ignore[union-attr]
        assert heartbeat.agent_status.pid == pid  # type: ignore[union-attr]
        assert (tmp_path / "state" / "node.json").exists()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pid is not None
    assert gone(pid)


def start_daemon(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(BIN / "ops-daemon"),
        "run",
        "--manager",
        closed_port_target(),
        "--enrollment-token",
        "t",
        "--state-dir",
        str(tmp_path / "state"),
        "--port",
        str(port),
    ]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def agent_pid_of(proc: subprocess.Popen[bytes], port: int) -> int:
    def answered() -> bool:
        assert proc.poll() is None, "daemon exited"
        return health(port) is not None

    poll_until(answered, what="the agent answers /health")
    body = health(port)
    assert body is not None
    pid = body["pid"]
    assert isinstance(pid, int)
    assert psutil.Process(pid).ppid() == proc.pid
    return pid


def test_ops_daemon_run_serves_the_agent_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = start_daemon(tmp_path, port)
    try:
        agent_pid = agent_pid_of(proc, port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert gone(agent_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_agent_of_a_killed_daemon_does_not_linger(tmp_path: Path) -> None:
    port = free_port()
    proc = start_daemon(tmp_path, port)
    try:
        agent_pid = agent_pid_of(proc, port)
    finally:
        proc.kill()
        proc.wait()
    poll_until(lambda: gone(agent_pid), what="the agent of the killed daemon stops")


def test_first_run_without_an_enrollment_token_explains_and_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(BIN / "ops-daemon"),
            "run",
            "--manager",
            closed_port_target(),
            "--state-dir",
            str(tmp_path),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "--enrollment-token" in result.stderr


def test_bad_settings_exit_2_naming_them() -> None:
    result = subprocess.run(
        [str(BIN / "ops-daemon"), "run", "--manager", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_unreadable_tls_files_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "daemon.yaml"
    config.write_text(f"tls: {{ca: {tmp_path / 'missing.pem'}}}\n")
    result = subprocess.run(
        [
            str(BIN / "ops-daemon"),
            "run",
            "--manager",
            closed_port_target(),
            "--enrollment-token",
            "t",
            "--state-dir",
            str(tmp_path / "state"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cannot read the TLS files" in result.stderr
