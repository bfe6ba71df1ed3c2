"""The daemon passes a running execution's output on from its Agent: in batches while the
task runs, each part where the one before ended, ahead of the final result that holds it all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opscaffold.daemon.taskrelay import AgentTasks
from opscaffold.protocol import task as protocol
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.daemon.tasks import body, running_agent

pytestmark = pytest.mark.timeout(60)
Report = pb.TaskResultReport | pb.TaskOutputReport


async def test_output_reaches_the_daemon_in_batches_before_the_result(tmp_path: Path) -> None:
    lines = 20
    script = f'for i in $(seq 1 {lines}); do echo "line $i"; sleep 0.1; done'
    reports: list[tuple[float, Report]] = []
    with running_agent(tmp_path) as agent:
        relay = AgentTasks(
            agent.url,
            agent.token,
            lambda r: reports.append((time.monotonic(), r)),
            lambda p: reports.append((time.monotonic(), p)),
        )
        order = protocol.TaskOrder(
            envelope=protocol.seal(body(content={"script": script}), agent.key)
        )
        await relay.carry_out(order.model_dump_json().encode())

    kinds = [type(r).__name__ for _, r in reports]
    assert kinds[0] == kinds[-1] == "TaskResultReport"
    final_at, final = reports[-1]
    assert isinstance(final, pb.TaskResultReport)
    assert final.status == "success"
    parts = [(at, r) for at, r in reports if isinstance(r, pb.TaskOutputReport)]
    assert parts, "no output passed on while the task ran"
    assert 1 < len(parts) < lines / 2  # batched, not a message per line
    offset = 0
    for _, part in parts:
        assert part.offset == offset
        offset += len(part.data.encode())
    passed = "".join(p.data for _, p in parts)
    assert final.output.startswith(passed)
    assert final.output == "".join(f"line {i}\n" for i in range(1, lines + 1))
    assert parts[0][0] < final_at - 1.0  # the first lines came well before the end


async def test_an_agent_without_live_output_leaves_it_to_the_result(tmp_path: Path) -> None:
    reports: list[Report] = []
    with running_agent(tmp_path) as agent:
        relay = AgentTasks(agent.url, agent.token, reports.append, reports.append)
        task = body(type="custom", content={"handler": "system.info"})
        order = protocol.TaskOrder(envelope=protocol.seal(task, agent.key))
        await relay.carry_out(order.model_dump_json().encode())
    assert [type(r).__name__ for r in reports] == ["TaskResultReport", "TaskResultReport"]
    final = reports[-1]
    assert isinstance(final, pb.TaskResultReport)
    assert "hostname=" in final.output
