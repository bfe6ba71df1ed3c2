"""Output of running executions from daemons: parts stored once by offset (over the unary RPC
and Connect, in line with the results), completed by the final result, and followed live as
Server-Sent Events, on this replica or another."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.app import create_app
from opscaffold.manager.models import TaskOutputChunk
from opscaffold.manager.runtime import Runtime
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer
from tests.manager.rpc.test_commands import Daemon
from tests.manager.rpc.test_task_results import add_execution, report, row
from tests.manager.sse import Event, events, served

pytestmark = pytest.mark.timeout(60)


def part(execution_id: str, offset: int, data: str, **fields: Any) -> pb.TaskOutputReport:
    return pb.TaskOutputReport(execution_id=execution_id, offset=offset, data=data, **fields)


async def so_far(
    client: httpx.AsyncClient, headers: dict[str, str], execution_id: str, node_id: int
) -> str:
    response = await client.get(
        f"/api/v1/executions/{execution_id}/nodes/{node_id}/output", headers=headers
    )
    assert response.status_code == 200, response.text
    text: str = response.json()["data"]["output"]
    return text


async def parts_stored(stack: Stack, execution_id: str) -> int:
    async with stack.runtime.engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(TaskOutputChunk)
            .where(TaskOutputChunk.execution_id == execution_id)
        )
    return int(found or 0)


async def test_parts_are_stored_once_by_offset_and_the_result_completes_them(
    wire: Wire, stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    registered, _ = await wire.register()
    token = bearer(registered.node_token)
    execution_id = await add_execution(stack, registered.node_id, "running")
    send = wire.stub.ReportTaskOutput

    assert (await send(part(execution_id, 0, "line 1\n"), metadata=token)).success
    assert (await send(part(execution_id, 0, "line 1\n"), metadata=token)).success  # a resend
    assert (await send(part(execution_id, 7, "line 2\n"), metadata=token)).success
    overlap = part(execution_id, 0, "line 1\nline 2\nline 3 é\n")  # a daemon started again
    assert (await send(overlap, metadata=token)).success
    assert await so_far(client, admin_headers, execution_id, registered.node_id) == (
        "line 1\nline 2\nline 3 é\n"
    )
    assert await parts_stored(stack, execution_id) == 3
    with pytest.raises(grpc.aio.AioRpcError) as gap:
        await send(part(execution_id, 500, "later\n"), metadata=token)
    assert gap.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ends at byte 24" in (gap.value.details() or "")

    final = "line 1\nline 2\nline 3 é\nlast\n"
    done = report(execution_id, "success", exit_code=0, output=final)
    assert (await wire.stub.ReportTaskResult(done, metadata=token)).success
    assert (await row(stack, execution_id)).output == final
    assert await parts_stored(stack, execution_id) == 0  # the result holds it all now
    late = part(execution_id, 24, "last\n")
    assert (await send(late, metadata=token)).success  # after the end: changes nothing
    assert await parts_stored(stack, execution_id) == 0


async def test_a_result_without_output_keeps_what_the_parts_brought(
    wire: Wire, stack: Stack
) -> None:
    registered, _ = await wire.register()
    token = bearer(registered.node_token)
    execution_id = await add_execution(stack, registered.node_id, "running")
    await wire.stub.ReportTaskOutput(part(execution_id, 0, "started\n"), metadata=token)
    lost = report(execution_id, "failed", error="the agent stopped while the task ran")
    assert (await wire.stub.ReportTaskResult(lost, metadata=token)).success
    assert (await row(stack, execution_id)).output == "started\n"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"execution_id": "nope"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"offset": -1}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"data": "bad\x00"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"execution_id": str(uuid.uuid4())}, grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_parts_are_refused_and_store_nothing(
    wire: Wire, stack: Stack, fields: dict[str, Any], code: grpc.StatusCode
) -> None:
    registered, _ = await wire.register()
    execution_id = await add_execution(stack, registered.node_id, "running")
    request = pb.TaskOutputReport(**({"execution_id": execution_id, "data": "x"} | fields))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportTaskOutput(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == code
    assert await parts_stored(stack, execution_id) == 0


async def test_a_node_sends_output_only_for_its_own_executions(wire: Wire, stack: Stack) -> None:
    owner, _ = await wire.register()
    other, _ = await wire.register()
    execution_id = await add_execution(stack, owner.node_id, "running")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportTaskOutput(
            part(execution_id, 0, "x"), metadata=bearer(other.node_token)
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_over_connect_parts_go_in_line_with_the_results(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    execution_id = await add_execution(stack, registered.node_id)
    daemon = Daemon(wire, registered.node_token)
    try:
        await daemon.send(task_result=report(execution_id, "running", node_uuid=node_uuid))
        await daemon.send(task_output=part(execution_id, 0, "a\n", node_uuid=node_uuid))
        await daemon.send(task_output=part(execution_id, 2, "b\n"))
        last = await daemon.send(task_result=report(execution_id, "success", output="a\nb\nc\n"))
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
    assert (stored.status, stored.output) == ("success", "a\nb\nc\n")


# -- followed live ---------------------------------------------------------------------------
async def next_event(stream: Any) -> Event:
    found: Event = await asyncio.wait_for(anext(stream), 20)
    return found


async def follow_live(
    base_url: str, headers: dict[str, str], url: str, wire: Wire, token: Any, execution_id: str
) -> None:
    """Open the stream of a running execution, then send its output part by part: each event
    arrives while the execution is still running, and the end comes with the result."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        http.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        stream = events(response)
        offset = 0
        for line in ("one\n", "two é\n"):
            await wire.stub.ReportTaskOutput(part(execution_id, offset, line), metadata=token)
            got = await next_event(stream)
            assert (got.name, got.data, got.id) == (
                "output",
                {"offset": offset, "data": line},
                str(offset + len(line.encode())),
            )
            offset += len(line.encode())
        final = report(execution_id, "failed", exit_code=2, output="one\ntwo é\nbye\n")
        await wire.stub.ReportTaskResult(final, metadata=token)
        rest = await next_event(stream)
        assert (rest.name, rest.text, rest.data["offset"]) == ("output", "bye\n", offset)
        end = await next_event(stream)
        assert (end.name, end.data) == (
            "end",
            {"status": "failed", "exit_code": 2, "truncated": False},
        )
        with pytest.raises(StopAsyncIteration):
            await next_event(stream)  # and the stream closes


async def test_a_reader_gets_each_part_as_it_is_stored_then_the_end(
    wire: Wire, stack: Stack, admin_headers: dict[str, str]
) -> None:
    registered, _ = await wire.register()
    execution_id = await add_execution(stack, registered.node_id, "running")
    url = f"/api/v1/executions/{execution_id}/nodes/{registered.node_id}/output/stream"
    async with served(stack.app) as base_url:
        await follow_live(
            base_url, admin_headers, url, wire, bearer(registered.node_token), execution_id
        )


async def test_a_reader_on_another_replica_is_woken_through_redis(
    wire: Wire, stack: Stack, admin_headers: dict[str, str]
) -> None:
    if stack.runtime.redis is None:
        pytest.skip("replicas share wake-ups through Redis; this stack runs without it")
    # The other replica looks for new parts only once a minute by itself: whatever arrives
    # within the test's time was woken through Redis.
    task = stack.settings.task.model_copy(update={"output_poll_interval": timedelta(minutes=1)})
    settings = stack.settings.model_copy(update={"task": task})
    runtime = Runtime.build(settings)
    replica = create_app(settings, runtime=runtime)
    registered, _ = await wire.register()
    execution_id = await add_execution(stack, registered.node_id, "running")
    url = f"/api/v1/executions/{execution_id}/nodes/{registered.node_id}/output/stream"
    try:
        async with replica.router.lifespan_context(replica), served(replica) as base_url:
            await follow_live(
                base_url, admin_headers, url, wire, bearer(registered.node_token), execution_id
            )
    finally:
        await runtime.close()
