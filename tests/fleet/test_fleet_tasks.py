"""A fleet answers `task` commands as Agents do, against a real Manager process: each
execution is checked with the key learned at enrollment, reported running, then ends as its
seed says; a cancel ends a running one as cancelled."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from opscaffold.daemon.session import Transport
from opscaffold.fleet.simulator import Fleet, FleetConfig
from tests.e2e.processes import Api, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST
from tests.helpers import wait_until

NODES = 12
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, FAST)
    instance.start()
    yield instance
    instance.ensure_stopped()


async def call(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def online(api: Api) -> list[dict[str, Any]] | None:
    page: dict[str, Any] = await call(lambda: api.get("/nodes", status="online", page_size=100))
    return page["items"] if page["total"] == NODES else None


async def execute(api: Api, name: str) -> str:
    body = {"name": name, "type": "script", "content": {"script": "true"}, "target_type": "all"}
    task = await call(api.send, "POST", "/tasks", body)
    result = await call(api.send, "POST", f"/tasks/{task['id']}/execute")
    assert result["total_nodes"] == NODES
    return str(result["execution_id"])


async def finished(api: Api, execution_id: str) -> dict[str, Any] | None:
    detail: dict[str, Any] = await call(api.get, f"/executions/{execution_id}")
    return detail if detail["status"] == "finished" else None


@pytest.mark.parametrize("transport", ["connect", "unary"])
async def test_a_fleet_runs_executions_to_the_outcomes_its_seed_gives(
    manager: Manager, transport: Transport
) -> None:
    config = FleetConfig(
        manager=f"127.0.0.1:{manager.grpc_port}",
        enrollment_token=ENROLLMENT_TOKEN,
        nodes=NODES,
        transport=transport,
        channels=2,
        ramp=0.5,
        heartbeat_interval=0.3,
        metric_interval=30,
        task_failure_rate=0.5,
        task_seconds=0.5,
        seed=3,
    )
    fleet = Fleet(config)
    running = asyncio.create_task(fleet.run())
    try:
        api: Api = await call(Api, manager, ADMIN_PASSWORD)
        nodes = await wait_until(partial(online, api), what=f"{NODES} nodes come online")
        index_of = {n["id"]: int(n["hostname"].removeprefix("fleet-")) for n in nodes}
        execution_id = await execute(api, "quick")
        detail = await wait_until(partial(finished, api, execution_id), what="all ended")

        behaviour = config.task_behaviour()
        expected: Counter[str] = Counter()
        for row in detail["nodes"]:
            fails = behaviour.fate(index_of[row["node_id"]], execution_id)[1]
            status = "failed" if fails else "success"
            expected[status] += 1
            assert row["status"] == status, row
            assert row["exit_code"] == (1 if fails else 0)
            assert row["started_at"] is not None
        assert set(expected) == {"success", "failed"}
        assert fleet.summary()["tasks"] == dict(expected)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_cancel_ends_a_fleets_running_executions(manager: Manager) -> None:
    config = FleetConfig(
        manager=f"127.0.0.1:{manager.grpc_port}",
        enrollment_token=ENROLLMENT_TOKEN,
        nodes=NODES,
        channels=2,
        ramp=0.5,
        heartbeat_interval=0.3,
        metric_interval=30,
        task_seconds=120,
    )
    fleet = Fleet(config)
    running = asyncio.create_task(fleet.run())
    try:
        api: Api = await call(Api, manager, ADMIN_PASSWORD)
        await wait_until(partial(online, api), what=f"{NODES} nodes come online")
        execution_id = await execute(api, "slow")

        async def all_running() -> bool:
            detail = await call(api.get, f"/executions/{execution_id}")
            return bool(detail["counts"]["running"] == NODES)

        await wait_until(all_running, what="every node runs it")
        answer = await call(api.send, "POST", f"/executions/{execution_id}/cancel")
        assert answer["signalled"] == NODES
        detail = await wait_until(partial(finished, api, execution_id), what="all cancelled")
        assert detail["counts"]["cancelled"] == NODES
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
