"""`ops-daemon` (with its Agent) against `ops-manager`: real processes, real gRPC, real metrics."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from opscaffold.daemon.state import StateStore
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc
from tests.e2e.processes import Api, Daemon, Manager
from tests.helpers import poll_until

ADMIN_PASSWORD = "E2e-Admin-Passw0rd"
ENROLLMENT_TOKEN = "ose_e2e-enrollment-token-0123456789"
HEARTBEAT_TIMEOUT_S, CHECK_INTERVAL_S = 3, 1
FAST = {
    "OPS_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "OPS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
    "OPS_NODE__HEARTBEAT_INTERVAL": "1s",
    "OPS_NODE__METRIC_INTERVAL": "1s",
    "OPS_NODE__HEARTBEAT_TIMEOUT": f"{HEARTBEAT_TIMEOUT_S}s",
    "OPS_NODE__OFFLINE_CHECK_INTERVAL": f"{CHECK_INTERVAL_S}s",
    "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
    "OPS_LOG__LEVEL": "warning",
}
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, FAST)
    instance.start()
    yield instance
    instance.ensure_stopped()


@pytest.fixture
def daemon(manager: Manager, tmp_path: Path) -> Iterator[Daemon]:
    instance = Daemon(manager, tmp_path / "node-a", ENROLLMENT_TOKEN)
    instance.start()
    yield instance
    instance.stop()


def online_node(api: Api) -> dict[str, Any] | None:
    items: list[dict[str, Any]] = api.get("/nodes", status="online")["items"]
    return items[0] if items else None


def test_node_online_with_real_metrics_and_agent(manager: Manager, daemon: Daemon) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    assert node["os"] == "linux"
    assert node["port"] == daemon.agent_port
    assert node["cpu_cores"] == psutil.cpu_count()

    agent = poll_until(lambda: api.get(f"/nodes/{node['id']}/agent"), what="agent reported")
    process = psutil.Process(agent["pid"])  # the agent's real pid, alive
    assert process.is_running()
    assert process.ppid() == daemon.proc.pid if daemon.proc else False
    assert agent["status"] == "running"

    latest = poll_until(lambda: api.get(f"/nodes/{node['id']}/metrics/latest"), what="metrics")
    assert 0 < latest["memory_used"] <= psutil.virtual_memory().total
    assert latest["process_count"] > 0
    assert 0 <= latest["cpu_usage"] <= 100
    assert 0 < latest["disk_usage"] <= 100


def test_killed_agent_is_restarted(manager: Manager, daemon: Daemon) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    path = f"/nodes/{node['id']}/agent"
    first = poll_until(lambda: api.get(path), what="agent reported")
    os.kill(first["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        agent: dict[str, Any] | None = api.get(path)
        if (
            agent
            and agent["restart_count"] > first["restart_count"]
            and agent["pid"] != first["pid"]
        ):
            return agent
        return None

    agent = poll_until(restarted, what="the agent restarted")
    assert psutil.Process(agent["pid"]).is_running()


def test_killed_daemon_goes_offline_within_timeout_and_check(
    manager: Manager, daemon: Daemon
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    daemon.kill()
    # Offline once last_heartbeat + timeout has passed, noticed by the next check.
    bound = HEARTBEAT_TIMEOUT_S + CHECK_INTERVAL_S + 2  # + up to one heartbeat interval of slack
    poll_until(
        lambda: api.get(f"/nodes/{node['id']}")["status"] == "offline",
        timeout=bound,
        what="the node goes offline",
    )
    events = [e["event"] for e in api.get(f"/nodes/{node['id']}/events")["items"]]
    assert events[0] == "offline"


def test_ping_and_config_reach_the_daemon_once(manager: Manager, daemon: Daemon) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    ping = api.send("POST", "/commands", {"node_ids": [node["id"]], "type": "ping"})["ids"][0]
    done = poll_until(
        lambda: (c := api.get(f"/commands/{ping}"))["state"] == "done" and c,
        what="the ping is acknowledged",
    )
    assert done["delivered_via"] == "connect"
    assert done["attempts"] == 1

    api.send("PUT", f"/nodes/{node['id']}/config", {"config": {"metric_interval": "2"}})
    poll_until(lambda: "metrics=2s" in daemon.log.read_text(), what="the daemon applies the config")
    assert daemon.log.read_text().count("metrics=2s") == 1


def test_commands_the_daemon_cannot_carry_out_fail_with_its_reason(
    manager: Manager, daemon: Daemon
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    bodies = [
        {"type": "update", "payload": {"version": "9.9.9"}},
        {"type": "config", "payload": {"config": {"metric_interval": "soon"}}},
    ]
    ids = [api.send("POST", "/commands", {"node_ids": [node["id"]], **b})["ids"][0] for b in bodies]

    def settled() -> list[Any] | None:
        commands = [api.get(f"/commands/{i}") for i in ids]
        return commands if all(c["state"] not in ("pending", "sent") for c in commands) else None

    update, config = poll_until(settled, what="the daemon reports both")
    assert update["state"] == "failed"
    assert update["error"].startswith("the update order is not valid: record_id: Field required")
    assert "manifest: Field required" in update["error"]  # each missing field named
    assert config["state"] == "failed"
    assert "metric_interval" in config["error"]  # the reason names what was wrong


def test_manager_killed_mid_ingest_loses_nothing(
    manager: Manager, daemon: Daemon, tmp_path: Path
) -> None:
    """SIGKILL the Manager while reports flow; after it restarts, every report the daemon made
    is stored exactly once: what was acknowledged survived, what was not is sent again."""
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    database = tmp_path / "manager.db"
    poll_until(lambda: len(stored_times(database, node["id"])) >= 3, what="reports flowing")
    manager.kill()
    poll_until(
        lambda: daemon.log.read_text().count("reconnecting in") >= 2,
        what="the daemon notices and retries while reports pile up",
    )
    before_restart = datetime.now()
    manager.start()
    poll_until(
        lambda: max(stored_times(database, node["id"])) > before_restart,
        what="reports arrive again",
    )
    times = stored_times(database, node["id"])
    assert len(times) == len(set(times))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 2.5, f"reports made while the Manager was down are missing: {gaps}"


def stored_times(database: Path, node_id: int) -> list[datetime]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT timestamp FROM node_metrics WHERE node_id = ? ORDER BY timestamp", (node_id,)
        ).fetchall()
    return [datetime.fromisoformat(r[0]) for r in rows]


def test_deleted_node_does_not_come_back(manager: Manager, daemon: Daemon) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node = poll_until(lambda: online_node(api), what="the node comes online")
    api.send("DELETE", f"/nodes/{node['id']}")
    proc = daemon.proc
    assert proc is not None
    code = poll_until(
        lambda: proc.poll() is not None and proc.returncode,
        timeout=30,
        what="daemon exits",
    )
    assert code != 0
    assert "re-enroll" in daemon.log.read_text() or "refused" in daemon.log.read_text()
    assert api.get("/nodes")["total"] == 0


def test_a_lost_first_answer_locks_out_only_strangers(manager: Manager, tmp_path: Path) -> None:
    """The daemon's first Register reached the Manager but its answer (the node token) was
    lost. A stranger holding the enrollment token and the uuid cannot take the fresh node
    over; the daemon itself, restarted on its state directory, enrolls it again."""
    state_dir = tmp_path / "node-lost"
    state = StateStore(state_dir).load_or_create()  # what the daemon keeps before Register
    enroll = (("authorization", f"Bearer {ENROLLMENT_TOKEN}"),)
    request = pb.RegisterRequest(
        uuid=state.uuid, hostname="node-lost", enrollment_key=state.enrollment_key
    )
    with grpc.insecure_channel(f"127.0.0.1:{manager.grpc_port}") as channel:
        stub = daemon_pb2_grpc.DaemonServiceStub(channel)
        first = stub.Register(request, metadata=enroll, timeout=10)  # then "lost"
        stranger = pb.RegisterRequest(uuid=state.uuid, hostname="evil")
        with pytest.raises(grpc.RpcError) as refused:
            stub.Register(stranger, metadata=enroll, timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    daemon = Daemon(manager, state_dir, ENROLLMENT_TOKEN)
    daemon.start()
    try:
        api = Api(manager, ADMIN_PASSWORD)
        node = poll_until(lambda: online_node(api), what="the daemon enrolls again")
        assert node["id"] == first.node_id
        assert api.get("/nodes")["total"] == 1
    finally:
        daemon.stop()
