"""A fleet of virtual nodes against a real Manager process that is killed and restarted: every
node comes back, none is lost to the way its stream ended."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opscaffold.fleet.simulator import Fleet, FleetConfig
from tests.e2e.processes import Manager

ENROLLMENT_TOKEN = "ose_e2e-enrollment-token-0123456789"
NODES = 300
STREAMS = re.compile(r'^manager_grpc_streams\{kind="connect"\} (\S+)$', re.MULTILINE)
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(
        tmp_path,
        {
            "OPS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
            "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
            "OPS_LOG__LEVEL": "warning",
        },
    )
    instance.start()
    yield instance
    instance.ensure_stopped()


async def connected(manager: Manager) -> int:
    """Connect streams the Manager holds, as its /metrics say (0 while it is down)."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"{manager.url}/metrics")
    except httpx.TransportError:
        return 0
    found = STREAMS.search(response.text)
    return int(float(found.group(1))) if found else 0


async def wait_for(manager: Manager, fleet: Fleet, count: int, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while await connected(manager) != count:
            assert fleet.failed == 0, f"{fleet.failed} nodes stopped for good ({what})"
            await asyncio.sleep(0.2)


async def test_every_node_reconnects_after_the_manager_is_killed(manager: Manager) -> None:
    config = FleetConfig(
        manager=f"127.0.0.1:{manager.grpc_port}",
        enrollment_token=ENROLLMENT_TOKEN,
        nodes=NODES,
        channels=8,
        ramp=2.0,
        heartbeat_interval=0.5,  # busy writers: a write often meets the stream as it ends
        metric_interval=1.0,
    )
    fleet = Fleet(config)
    running = asyncio.create_task(fleet.run())
    try:
        await wait_for(manager, fleet, NODES, 30, "first connection")
        await asyncio.to_thread(manager.kill)
        await asyncio.to_thread(manager.start)  # same ports, same database
        # Bounded by the nodes' backoff (and gRPC's own reconnect backoff), not by the Manager.
        await wait_for(manager, fleet, NODES, 50, "after the restart")
        assert not running.done()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert fleet.summary()["failed_nodes"] == 0
