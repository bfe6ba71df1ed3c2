"""The Manager's task key on a node: pinned at install, or learned once and never replaced."""

from __future__ import annotations

import logging
import stat
import subprocess
from pathlib import Path

import pytest

from opscaffold.daemon.agent.tasks import KEY_FILE, NODE_FILE, TOKEN_FILE, AgentTaskSettings
from opscaffold.daemon.taskrelay import TaskKeyError, TaskKeyStore, prepare_agent_dir
from opscaffold.protocol import task as protocol
from tests.daemon.helpers import BIN, closed_port_target
from tests.helpers import free_port, poll_until

pytestmark = pytest.mark.timeout(10)


def pem() -> bytes:
    return protocol.public_pem(protocol.generate_key().public_key())


def test_the_first_key_offered_is_kept_and_never_replaced_by_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TaskKeyStore(tmp_path / "agent")
    first, second = pem(), pem()

    assert store.offer(first)
    with caplog.at_level(logging.WARNING):
        assert not store.offer(second)

    assert store.pinned() == first
    assert stat.S_IMODE((tmp_path / "agent" / KEY_FILE).stat().st_mode) == 0o600
    assert "keeping the pinned key" in caplog.text


def test_a_key_given_at_install_is_pinned_and_wins_over_the_managers(tmp_path: Path) -> None:
    store = TaskKeyStore(tmp_path / "agent")
    installed, offered = pem(), pem()

    store.pin(installed)

    assert not store.offer(offered)
    assert store.pinned() == installed
    with pytest.raises(TaskKeyError):
        store.pin(b"not a key")
    assert not store.offer(b"-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----\\n")


def test_an_unusable_offer_pins_nothing(tmp_path: Path) -> None:
    store = TaskKeyStore(tmp_path / "agent")

    assert not store.offer(b"garbage")

    assert store.pinned() is None


def test_the_agent_directory_gets_the_node_and_a_new_private_token(tmp_path: Path) -> None:
    task_dir = tmp_path / "agent"
    first = prepare_agent_dir(task_dir, "node-uuid-1")
    second = prepare_agent_dir(task_dir, "node-uuid-1")

    assert first != second  # a new token each start
    assert (task_dir / TOKEN_FILE).read_text() == second
    assert (task_dir / NODE_FILE).read_text() == "node-uuid-1"
    assert AgentTaskSettings.read(task_dir) == AgentTaskSettings()  # what the Agent reads
    assert stat.S_IMODE((task_dir / TOKEN_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(task_dir.stat().st_mode) == 0o700


def test_ops_daemon_run_pins_the_manager_key_or_refuses_a_bad_one(tmp_path: Path) -> None:
    def command(state: Path, key: Path) -> list[str]:
        return [
            str(BIN / "ops-daemon"), "run", "--manager", closed_port_target(),
            "--enrollment-token", "t", "--state-dir", str(state),
            "--port", str(free_port()), "--manager-key", str(key),
        ]  # fmt: skip

    good, bad = tmp_path / "good.pem", tmp_path / "bad.pem"
    good.write_bytes(pem())
    bad.write_bytes(protocol.public_pem(protocol.generate_key().public_key())[:40])
    pinned = tmp_path / "state" / "agent" / KEY_FILE

    process = subprocess.Popen(command(tmp_path / "state", good), stderr=subprocess.DEVNULL)
    try:
        poll_until(pinned.exists, what="the key is pinned")
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert pinned.read_bytes() == good.read_bytes()

    result = subprocess.run(
        command(tmp_path / "other", bad), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "manager_key" in result.stderr
