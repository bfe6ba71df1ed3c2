from __future__ import annotations

import ipaddress
import uuid

import pytest

from opscaffold.daemon.session import Identity
from opscaffold.fleet.nodes import VirtualNode
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

PERCENT = ("cpu_usage", "memory_usage", "disk_usage")
LOADS = ("load_avg_1", "load_avg_5", "load_avg_15")


def node(index: int = 7, node_uuid: str | None = None) -> VirtualNode:
    identity = Identity(node_uuid or str(uuid.uuid4()))
    return VirtualNode(index, identity, lambda _: None)


async def test_metrics_stay_plausible_and_vary() -> None:
    virtual = node()
    samples = [await virtual.metrics() for _ in range(500)]
    for sample in samples:
        for name in PERCENT:
            assert 0.0 <= getattr(sample, name) <= 100.0
        for name in LOADS:
            assert 0.0 <= getattr(sample, name) <= virtual.cpu_cores * 1.3
        assert 0 <= sample.memory_used <= virtual.memory_total
        assert 0 <= sample.disk_used <= virtual.disk_total
        assert sample.network_rx > 0
        assert sample.network_tx > 0
        assert sample.process_count > 0
        assert sample.tcp_connections >= 0
    assert len({s.cpu_usage for s in samples}) > 100


async def test_a_node_looks_the_same_every_run() -> None:
    node_uuid = str(uuid.uuid4())
    first, second = node(node_uuid=node_uuid), node(node_uuid=node_uuid)
    assert await first.register_request() == await second.register_request()
    assert await first.metrics() == await second.metrics()


async def test_register_request_is_a_valid_description() -> None:
    request = await node(index=70_000).register_request()
    assert request.hostname == "fleet-070000"
    assert ipaddress.ip_address(request.ip) in ipaddress.ip_network("10.0.0.0/8")
    assert (request.os, request.arch, request.port) == ("linux", "amd64", 9100)
    assert request.cpu_cores > 0
    assert request.memory_total > 0
    assert request.disk_total > 0


async def test_restart_command_restarts_the_pretend_agent() -> None:
    virtual = node()
    before = await virtual.agent_status()
    await virtual.on_command(pb.Command(id="r", type="restart"))
    after = await virtual.agent_status()
    assert before.status == after.status == "running"
    assert (before.restart_count, after.restart_count) == (0, 1)


async def test_pinned_metrics_are_reported_as_set_until_released() -> None:
    virtual = node()
    virtual.pin_metrics({"cpu_usage": 97.5, "process_count": 4000})
    pinned = [await virtual.metrics() for _ in range(20)]
    assert {(s.cpu_usage, s.process_count) for s in pinned} == {(97.5, 4000)}
    assert len({s.memory_usage for s in pinned}) > 1  # the others still wander

    virtual.pin_metrics({})
    released = [await virtual.metrics() for _ in range(20)]
    assert len({s.cpu_usage for s in released}) > 1


def test_only_report_fields_can_be_pinned() -> None:
    with pytest.raises(ValueError, match="unknown metric cpu_temperature"):
        node().pin_metrics({"cpu_temperature": 80})
    with pytest.raises(ValueError, match="unknown metric timestamp"):
        node().pin_metrics({"timestamp": 1})
