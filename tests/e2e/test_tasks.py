"""Tasks through a real Manager to real daemons and their Agents: the Manager signs one
envelope per node, the daemon relays it, the Agent checks and runs it, and the result comes
back over gRPC until acknowledged."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opscaffold.daemon.agent.tasks import KEY_FILE
from opscaffold.protocol import task as protocol
from tests.daemon.helpers import gone
from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST, online_node
from tests.helpers import poll_until

pytestmark = pytest.mark.timeout(180)
ENV = FAST | {"OPS_TASK__CHECK_INTERVAL": "1s", "OPS_TASK__TIMEOUT_GRACE": "5s"}


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, ENV)
    instance.start()
    yield instance
    instance.ensure_stopped()


@pytest.fixture
def daemon(manager: Manager, tmp_path: Path) -> Iterator[Daemon]:
    instance = Daemon(
        manager, tmp_path / "node-a", ENROLLMENT_TOKEN, "--task-file-dir", str(tmp_path)
    )
    instance.start()
    yield instance
    instance.stop()


def run(api: Api, node_id: int, script: str, timeout: int = 30) -> str:
    task = api.send(
        "POST",
        "/tasks",
        {
            "name": script[:100],
            "type": "script",
            "content": {"script": script},
            "timeout": timeout,
            "target_type": "node",
            "target_value": [str(node_id)],
        },
    )
    execution_id: str = api.send("POST", f"/tasks/{task['id']}/execute")["execution_id"]
    return execution_id


def row(api: Api, execution_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get(f"/executions/{execution_id}")["nodes"][0]
    return found


def ended(api: Api, execution_id: str, timeout: float = 60) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        found = row(api, execution_id)
        return found if found["status"] not in ("pending", "running") else None

    return poll_until(final, timeout=timeout, what=f"execution {execution_id} ends")  # type: ignore[no-any-return]


def output(api: Api, execution_id: str, node_id: int) -> dict[str, Any]:
    found: dict[str, Any] = api.get(f"/executions/{execution_id}/nodes/{node_id}/output")
    return found


def test_scripts_run_time_out_cancel_and_cap_their_output(
    manager: Manager, daemon: Daemon, tmp_path: Path
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    node_id = node["id"]
    key_file = daemon.state_dir / "agent" / KEY_FILE  # learned at enrollment
    pinned = poll_until(lambda: key_file.exists() and key_file.read_bytes(), what="key pinned")
    assert protocol.fingerprint(protocol.load_public_key(pinned)) == protocol.fingerprint(
        protocol.load_private_key(
            (tmp_path / "secrets" / "task_signing_key.pem").read_bytes()
        ).public_key()
    )

    echo = run(api, node_id, "echo hello from $(hostname)")
    exit3 = run(api, node_id, "echo partial; exit 3")
    timeout_pids, cancel_pids = tmp_path / "timeout.pids", tmp_path / "cancel.pids"
    slow = run(api, node_id, f"sleep 300 & echo $! > {timeout_pids}; sleep 300", timeout=2)
    big = run(api, node_id, "head -c 10485760 /dev/zero | tr '\\0' a")
    tree = (
        f"(sleep 300 & echo $! >> {cancel_pids}; wait) & sleep 300 & echo $! >> {cancel_pids}; wait"
    )
    cancelled = run(api, node_id, tree, timeout=300)

    done = ended(api, echo)
    assert (done["status"], done["exit_code"]) == ("success", 0)
    said = output(api, echo, node_id)
    assert said["output"].startswith("hello from ")
    failed = ended(api, exit3)
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    assert output(api, exit3, node_id)["output"] == "partial\n"

    poll_until(lambda: row(api, cancelled)["status"] == "running", what="the tree runs")
    poll_until(
        lambda: cancel_pids.exists() and len(cancel_pids.read_text().split()) == 2,
        what="the tree's children started",
    )
    answer = api.send("POST", f"/executions/{cancelled}/cancel")
    assert answer["signalled"] == 1
    stopped = ended(api, cancelled)
    assert stopped["status"] == "cancelled"
    for pid in map(int, cancel_pids.read_text().split()):
        assert gone(pid), pid

    timed_out = ended(api, slow)
    assert timed_out["status"] == "timeout"
    assert "timeout" in (timed_out["error"] or "")
    for pid in map(int, timeout_pids.read_text().split()):
        assert gone(pid), pid

    capped = ended(api, big)
    assert capped["status"] == "success"
    assert capped["output_truncated"] is True
    text = output(api, big, node_id)
    assert text["truncated"] is True
    assert len(text["output"]) < 1024 * 1024 + 200
    assert text["output"].endswith("[output truncated: kept 1048576 of 10485760 bytes]\n")


def test_forged_and_replayed_envelopes_are_refused(
    manager: Manager, daemon: Daemon, tmp_path: Path
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    marker = tmp_path / "runs"
    execution_id = run(api, node["id"], f"echo run >> {marker}")
    assert ended(api, execution_id)["status"] == "success"
    agent = f"http://127.0.0.1:{daemon.agent_port}/tasks"

    with sqlite3.connect(f"file:{tmp_path / 'manager.db'}?mode=ro", uri=True) as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM node_commands WHERE type = 'task'"
        ).fetchone()
    envelope = protocol.TaskOrder.model_validate(json.loads(payload)).envelope
    replay = httpx.post(agent, content=envelope.model_dump_json())
    assert replay.status_code == 409, replay.text

    body = protocol.EnvelopeBody.model_validate_json(envelope.body)
    again = body.model_copy(update={"execution_id": "00000000-0000-4000-8000-000000000001"})
    forged = protocol.seal(again, protocol.generate_key())
    refused = httpx.post(agent, content=forged.model_dump_json())
    assert refused.status_code == 403, refused.text
    assert marker.read_text() == "run\n"  # ran once, as the Manager asked


def test_a_node_pinned_to_another_key_refuses_the_managers_tasks(
    manager: Manager, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(protocol.public_pem(protocol.generate_key().public_key()))
    daemon = Daemon(manager, tmp_path / "node-b", ENROLLMENT_TOKEN, "--manager-key", str(other))
    daemon.start()
    try:
        api = Api(manager, ADMIN_PASSWORD)
        node = poll_until(lambda: online_node(api), what="the node comes online")
        execution_id = run(api, node["id"], "echo never")
        refused = ended(api, execution_id)
        assert refused["status"] == "failed"
        assert "signature" in (refused["error"] or "")
        assert (daemon.state_dir / "agent" / KEY_FILE).read_bytes() == other.read_bytes()
    finally:
        daemon.stop()
