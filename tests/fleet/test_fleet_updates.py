"""A fleet answers `update` commands as daemons do, against a real Manager process: each
record walks its states to success, failed or rollback (as the seed says), the command ends
done or failed with the final state, and the nodes report the versions they now run."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from opscaffold.daemon import package_version
from opscaffold.daemon.session import Transport
from opscaffold.fleet.simulator import Fleet, FleetConfig
from opscaffold.protocol.manifest import generate_key, public_pem
from tests.daemon.packages import order_for
from tests.e2e.processes import Api, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST
from tests.fleet.test_updates import manifest
from tests.helpers import wait_until

NODES = 20
NEW = "9.0.0"
URL = "https://packages.example/never-fetched.tar.gz"  # a virtual node downloads nothing
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, FAST)
    instance.start()
    yield instance
    instance.ensure_stopped()


def add_record(database: Path, node_id: int, component: str) -> int:
    """An update record as a rollout makes it (written beside the running Manager)."""
    with sqlite3.connect(database, timeout=10) as conn:
        cursor = conn.execute(
            "INSERT INTO update_records (batch_id, node_id, component, from_version,"
            " to_version, status, progress, created_by, created_at)"
            " VALUES ('b-1', ?, ?, ?, ?, 'pending', 0, 1, CURRENT_TIMESTAMP)",
            (node_id, component, package_version(), NEW),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def records(database: Path) -> dict[int, dict[str, Any]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM update_records").fetchall()
    return {row["id"]: dict(row) for row in rows}


async def call(function: Any, *args: Any) -> Any:
    """A blocking API call, off the loop the fleet runs on."""
    return await asyncio.to_thread(function, *args)


@dataclass
class Sent:
    """One node's order and the command that carried it."""

    index: int  # the virtual node's (fleet-<index>)
    component: str
    payload: dict[str, Any]
    command_id: str

    @property
    def record_id(self) -> int:
        return int(self.payload["record_id"])


@pytest.mark.parametrize("transport", ["connect", "unary"])
async def test_a_fleet_walks_update_orders_to_their_outcomes(
    manager: Manager, tmp_path: Path, transport: Transport
) -> None:
    trusted, unknown = generate_key(), generate_key()
    key_file = tmp_path / "trusted.pem"
    key_file.write_bytes(public_pem(trusted.public_key()))
    config = FleetConfig(
        manager=f"127.0.0.1:{manager.grpc_port}",
        enrollment_token=ENROLLMENT_TOKEN,
        nodes=NODES,
        transport=transport,
        channels=2,
        ramp=0.5,
        heartbeat_interval=0.3,
        metric_interval=30,
        update_failure_rate=0.4,
        update_seconds=1.0,
        seed=7,
        trusted_keys=[key_file],
    )
    fleet = Fleet(config)
    running = asyncio.create_task(fleet.run())
    database = tmp_path / "manager.db"
    try:
        api: Api = await call(Api, manager, ADMIN_PASSWORD)
        nodes = await wait_until(partial(online, api), what=f"{NODES} nodes come online")
        sent: dict[int, Sent] = {}  # by node id
        for node in nodes:
            index = int(node["hostname"].removeprefix("fleet-"))
            component = "agent" if index % 2 else "daemon"
            record_id = await call(add_record, database, node["id"], component)
            order = order_for(manifest(component, NEW), trusted, URL, record_id)
            payload = order.model_dump(mode="json")
            sent[node["id"]] = Sent(index, component, payload, await send(api, node["id"], payload))
        forged_record = await call(add_record, database, nodes[0]["id"], "agent")
        forged = order_for(manifest("agent", "9.1.0"), unknown, URL, forged_record)
        forged_command = await send(api, nodes[0]["id"], forged.model_dump(mode="json"))

        outcomes = {n: await outcome(api, s.command_id) for n, s in sent.items()}
        refused = await outcome(api, forged_command)
        stored = await call(records, database)

        # Each record went the way the seed says; the command's result is its final state.
        behaviour = config.update_behaviour()
        finals: Counter[str] = Counter()
        for node_id, one in sent.items():
            record = stored[one.record_id]
            fails_in = behaviour.fate(one.index, one.record_id).fails_in
            status = {None: "success", "verifying": "rollback"}.get(fails_in, "failed")
            finals[status] += 1
            assert record["status"] == status, one
            assert record["started_at"] is not None
            assert record["finished_at"] is not None
            result = outcomes[node_id]
            if status == "success":
                assert (result["state"], result["error"]) == ("done", None)
                assert record["progress"] == 100
            else:
                assert result["state"] == "failed"
                assert result["error"] == f"{status}: {record['error_message']}"
                assert record["error_message"].startswith("simulated: ")
        assert set(finals) == {"success", "failed", "rollback"}  # seed 7 gives all three
        finals["failed"] += 1  # the forged order
        assert fleet.summary()["updates"] == dict(finals)

        reason = "the package is not signed by a trusted key"
        assert (refused["state"], refused["error"]) == ("failed", f"failed: {reason}")
        assert (stored[forged_record]["status"], stored[forged_record]["error_message"]) == (
            "failed",
            reason,
        )

        # Each node reports what it runs now: the agent in its heartbeats, the daemon when
        # it registers again as the new version.
        for node_id, one in sent.items():
            success = stored[one.record_id]["status"] == "success"
            version = NEW if success else package_version()
            await wait_until(
                partial(runs, api, node_id, one.component, version),
                what=f"node {one.index} reports {one.component} {version}",
            )

        # An order delivered again (a new command, the same record) is answered with its
        # outcome, not carried out again: a second install would be refused as installed.
        one_of_each = {stored[one.record_id]["status"]: n for n, one in sent.items()}
        for node_id in one_of_each.values():
            again = await outcome(api, await send(api, node_id, sent[node_id].payload))
            first = outcomes[node_id]
            assert (again["state"], again["error"]) == (first["state"], first["error"])
        assert await call(records, database) == stored
        assert fleet.summary()["failed_nodes"] == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def online(api: Api) -> list[dict[str, Any]] | None:
    found = await call(partial(api.get, "/nodes", status="online", page_size=100))
    items: list[dict[str, Any]] = found["items"]
    return items if len(items) == NODES else None


async def send(api: Api, node_id: int, payload: dict[str, Any]) -> str:
    body = {"node_ids": [node_id], "type": "update", "payload": payload}
    command_id: str = (await call(api.send, "POST", "/commands", body))["ids"][0]
    return command_id


async def settled(api: Api, command_id: str) -> dict[str, Any] | None:
    command: dict[str, Any] = await call(api.get, f"/commands/{command_id}")
    return command if command["state"] not in ("pending", "sent") else None


async def outcome(api: Api, command_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await wait_until(
        partial(settled, api, command_id), what=f"command {command_id} ends"
    )
    return result


async def runs(api: Api, node_id: int, component: str, version: str) -> bool:
    """Whether the Manager shows the node running `version` of `component`."""
    if component == "agent":
        agent: dict[str, Any] | None = await call(api.get, f"/nodes/{node_id}/agent")
        return agent is not None and agent["version"] == version
    node: dict[str, Any] = await call(api.get, f"/nodes/{node_id}")
    return bool(node["daemon_version"] == version)
