"""What daemons report of task executions: over the unary RPC and Connect, stored once, only
as the state table allows, and only for the node's own rows; Register hands out the key."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from opscaffold.manager.models import TaskExecution
from opscaffold.manager.task.states import STATES, allowed
from opscaffold.protocol import task as protocol
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer
from tests.manager.rpc.test_commands import Daemon

pytestmark = pytest.mark.timeout(60)


async def add_execution(stack: Stack, node_id: int, status: str = "pending") -> str:
    execution_id = str(uuid.uuid4())
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(TaskExecution).values(
                task_id=1, execution_id=execution_id, node_id=node_id, status=status
            )
        )
    return execution_id


async def row(stack: Stack, execution_id: str) -> TaskExecution:
    async with stack.runtime.sessions() as session:
        found = await session.scalar(
            sa.select(TaskExecution).where(TaskExecution.execution_id == execution_id)
        )
    assert found is not None
    return found


def report(execution_id: str, status: str, **fields: Any) -> pb.TaskResultReport:
    return pb.TaskResultReport(execution_id=execution_id, status=status, **fields)


async def test_the_database_moves_only_as_the_table_allows(wire: Wire, stack: Stack) -> None:
    registered, _ = await wire.register()
    token = bearer(registered.node_token)
    for current, target in itertools.product(STATES, STATES):
        if target == "pending":
            continue  # no node reports it
        execution_id = await add_execution(stack, registered.node_id, current)
        call = wire.stub.ReportTaskResult(report(execution_id, target), metadata=token)
        if allowed(current, target) or current == target:
            assert (await call).success, (current, target)
            assert (await row(stack, execution_id)).status == target
        else:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, (current, target)
            assert (await row(stack, execution_id)).status == current


async def test_register_hands_out_the_task_key(wire: Wire, stack: Stack) -> None:
    registered, _ = await wire.register()

    key = protocol.load_public_key(registered.task_public_key)
    assert protocol.fingerprint(key) == stack.runtime.task_key.fingerprint


async def test_a_result_is_stored_once_with_its_output_and_exit_code(
    wire: Wire, stack: Stack
) -> None:
    registered, _ = await wire.register()
    token = bearer(registered.node_token)
    execution_id = await add_execution(stack, registered.node_id)

    running = report(execution_id, "running", started_at=1_800_000_000)
    assert (await wire.stub.ReportTaskResult(running, metadata=token)).success
    final = report(
        execution_id,
        "failed",
        exit_code=3,
        output="partial\n",
        truncated=True,
        error="exit 3",
        finished_at=1_800_000_005,
    )
    for _ in range(2):  # the second is a resend after a lost acknowledgement
        assert (await wire.stub.ReportTaskResult(final, metadata=token)).success

    stored = await row(stack, execution_id)
    assert (stored.status, stored.exit_code, stored.output) == ("failed", 3, "partial\n")
    assert stored.output_truncated == 1
    assert stored.error == "exit 3"
    assert stored.started_at is not None
    assert stored.finished_at is not None
    assert (stored.finished_at - stored.started_at).total_seconds() == 5
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportTaskResult(report(execution_id, "success"), metadata=token)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_results_over_connect_are_applied_in_order(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    execution_id = await add_execution(stack, registered.node_id)
    daemon = Daemon(wire, registered.node_token)
    try:
        await daemon.send(task_result=report(execution_id, "running", node_uuid=node_uuid))
        last = await daemon.send(task_result=report(execution_id, "success", exit_code=0))
        refused: list[pb.Refusal] = []
        while True:
            ack = (await daemon.next("ack")).ack
            refused.extend(ack.refused)
            if ack.seq == last:
                break
    finally:
        await daemon.close()
    assert refused == []
    stored = await row(stack, execution_id)
    assert (stored.status, stored.exit_code) == ("success", 0)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"status": "done"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "pending"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "failed", "output": "bad\x00"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "running", "execution_id": "nope"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "running", "execution_id": str(uuid.uuid4())}, grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_reports_are_refused_and_change_nothing(
    wire: Wire, stack: Stack, fields: dict[str, Any], code: grpc.StatusCode
) -> None:
    registered, _ = await wire.register()
    execution_id = await add_execution(stack, registered.node_id)
    request = pb.TaskResultReport(**({"execution_id": execution_id} | fields))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportTaskResult(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == code
    assert (await row(stack, execution_id)).status == "pending"


async def test_a_node_reports_only_its_own_executions(wire: Wire, stack: Stack) -> None:
    owner, _ = await wire.register()
    other, _ = await wire.register()
    execution_id = await add_execution(stack, owner.node_id)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportTaskResult(
            report(execution_id, "running"), metadata=bearer(other.node_token)
        )

    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await row(stack, execution_id)).status == "pending"
