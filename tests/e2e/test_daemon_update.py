"""An `update` command through a real Manager to a real daemon: the daemon installs the signed
agent package, and the command's result is the updater's final state."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opscaffold.protocol.manifest import generate_key, public_pem
from tests.daemon.helpers import health
from tests.daemon.packages import PackageServer, build, manifest_for, order_for
from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST, online_node
from tests.helpers import poll_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[PackageServer]:
    running = PackageServer()
    running.start()
    yield running
    running.stop()


def add_record(database: Path, node_id: int, component: str, version: str) -> int:
    """An update record as a rollout makes it (written beside the running Manager)."""
    with sqlite3.connect(database, timeout=10) as conn:
        cursor = conn.execute(
            "INSERT INTO update_records (batch_id, node_id, component, from_version,"
            " to_version, status, progress, created_by, created_at)"
            " VALUES ('b-1', ?, ?, '1.0.0', ?, 'pending', 0, 1, CURRENT_TIMESTAMP)",
            (node_id, component, version),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def record(database: Path, record_id: int) -> dict[str, Any]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM update_records WHERE id = ?", (record_id,)).fetchone()
    return dict(row)


def settled(api: Api, command_id: str) -> dict[str, Any] | None:
    command: dict[str, Any] = api.get(f"/commands/{command_id}")
    return command if command["state"] not in ("pending", "sent") else None


def test_an_update_command_installs_the_agent_and_reports_the_outcome(
    tmp_path: Path, server: PackageServer
) -> None:
    trusted, unknown = generate_key(), generate_key()
    key_file = tmp_path / "trusted.pem"
    key_file.write_bytes(public_pem(trusted.public_key()))
    package = build("agent", "5.0.0", tmp_path / "packages")
    manifest = manifest_for(package, "agent", "5.0.0")
    url = server.add(package)
    manager = Manager(tmp_path, FAST)
    manager.start()
    state_dir = tmp_path / "node"
    daemon = Daemon(manager, state_dir, ENROLLMENT_TOKEN, "--trusted-key", str(key_file))
    daemon.start()
    try:
        api = Api(manager, ADMIN_PASSWORD)
        node = poll_until(lambda: online_node(api), what="the node comes online")

        def send(payload: dict[str, Any]) -> dict[str, Any]:
            body = {"node_ids": [node["id"]], "type": "update", "payload": payload}
            command_id = api.send("POST", "/commands", body)["ids"][0]
            outcome: dict[str, Any] = poll_until(
                lambda: settled(api, command_id), what="the update settles"
            )
            return outcome

        forged = send(order_for(manifest, unknown, url, 10_000).model_dump(mode="json"))
        assert forged["state"] == "failed"
        assert forged["error"] == "failed: the package is not signed by a trusted key"
        assert server.requests == []

        database = tmp_path / "manager.db"
        record_id = add_record(database, node["id"], "agent", "5.0.0")
        done = send(order_for(manifest, trusted, url, record_id).model_dump(mode="json"))
        assert (done["state"], done["error"]) == ("done", None)
        # Every step reached the record, in order: success is refused from any state but
        # verifying, and started_at is set only by the first step, downloading.
        stored = poll_until(
            lambda: (row := record(database, record_id))["status"] == "success" and row,
            what="the record reaches success",
        )
        assert stored["progress"] == 100
        assert stored["started_at"] is not None
        assert stored["finished_at"] is not None
        assert health(daemon.agent_port)["version"] == "5.0.0"  # type: ignore[index]
        token = json.loads((state_dir / "node.json").read_text())["node_token"]
        assert {seen.authorization for seen in server.requests} == {f"Bearer {token}"}
        poll_until(
            lambda: api.get(f"/nodes/{node['id']}/agent")["version"] == "5.0.0",
            what="the heartbeat reports the new agent",
        )
    finally:
        daemon.stop()
        manager.ensure_stopped()


def test_an_update_command_re_executes_the_daemon_as_the_new_version(
    tmp_path: Path, server: PackageServer
) -> None:
    trusted = generate_key()
    key_file = tmp_path / "trusted.pem"
    key_file.write_bytes(public_pem(trusted.public_key()))
    package = build("daemon", "9.0.0", tmp_path / "packages")
    manager = Manager(tmp_path, FAST)
    manager.start()
    daemon = Daemon(manager, tmp_path / "node", ENROLLMENT_TOKEN, "--trusted-key", str(key_file))
    daemon.start()
    try:
        api = Api(manager, ADMIN_PASSWORD)
        node = poll_until(lambda: online_node(api), what="the node comes online")
        database = tmp_path / "manager.db"
        record_id = add_record(database, node["id"], "daemon", "9.0.0")
        manifest = manifest_for(package, "daemon", "9.0.0")
        order = order_for(manifest, trusted, server.add(package), record_id)
        body = {
            "node_ids": [node["id"]],
            "type": "update",
            "payload": order.model_dump(mode="json"),
        }
        command_id = api.send("POST", "/commands", body)["ids"][0]

        # The new daemon, in the same process, reports the command's result as it starts.
        done = poll_until(lambda: settled(api, command_id), what="the update settles")

        assert (done["state"], done["error"]) == ("done", None)
        assert "daemon 9.0.0, node" in daemon.log.read_text()
        poll_until(
            lambda: record(database, record_id)["status"] == "success",
            what="the new daemon reports the record's success",
        )
        assert daemon.proc is not None
        assert daemon.proc.poll() is None
        poll_until(
            lambda: api.get(f"/nodes/{node['id']}")["daemon_version"] == "9.0.0",
            what="the Manager sees the new daemon's version",
        )
        # Its agent runs from the daemon's package too (no agent package installed).
        poll_until(
            lambda: (body := health(daemon.agent_port)) and body["version"] == "9.0.0",
            what="the new daemon's agent answers",
        )
    finally:
        daemon.stop()
        manager.ensure_stopped()
