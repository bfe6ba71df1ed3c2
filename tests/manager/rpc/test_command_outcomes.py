"""What becomes of a command: the state table, walked in the database, and outcomes reported
by the daemon's own session against the real server, over Connect and over unary calls."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from opscaffold.daemon.commands import CommandError, Intervals
from opscaffold.daemon.link import open_channel, stub
from opscaffold.daemon.session import Identity, NodeSession, SessionSettings
from opscaffold.manager.command import repository
from opscaffold.manager.command.states import STATES, TRANSITIONS, CommandState, allowed, sources
from opscaffold.manager.db import transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import NodeCommand
from opscaffold.manager.models.node import COMMAND_STATES
from opscaffold.manager.rpc.server import GrpcService
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer, registration
from tests.manager.rpc.test_commands import Daemon, send, state_of

FINAL: set[CommandState] = {"done", "failed", "expired"}


# ---- the table ---------------------------------------------------------------------------


def test_the_table_knows_every_state_the_column_allows() -> None:
    assert set(STATES) == set(COMMAND_STATES) == set(TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATES, STATES)))
def test_every_transition_is_allowed_or_forbidden_as_designed(
    current: CommandState, target: CommandState
) -> None:
    expected = {
        ("pending", "sent"),
        ("pending", "done"),
        ("pending", "expired"),
        ("sent", "sent"),
        ("sent", "done"),
        ("sent", "failed"),
        ("sent", "expired"),
    }
    assert allowed(current, target) is ((current, target) in expected)
    assert (current in sources(target)) is ((current, target) in expected)
    if current in FINAL:
        assert not allowed(current, target)


# ---- the same table, as the outbox's statements apply it ------------------------------------

Move = Callable[[Any, int, str], Awaitable[object]]


async def _to_sent(session: Any, node_id: int, command_id: str) -> object:
    await repository.mark(session, [command_id], state="sent", now=utcnow(), via="connect")
    return None


async def _to_done(session: Any, node_id: int, command_id: str) -> object:
    return await repository.settle(session, node_id, {command_id: None}, utcnow())


async def _to_failed(session: Any, node_id: int, command_id: str) -> object:
    return await repository.settle(session, node_id, {command_id: "no"}, utcnow())


async def _to_expired(session: Any, node_id: int, command_id: str) -> object:
    return await repository.expire(session, utcnow() + timedelta(days=30))


MOVES: dict[CommandState, Move] = {
    "sent": _to_sent,
    "done": _to_done,
    "failed": _to_failed,
    "expired": _to_expired,
}


async def test_the_outbox_moves_commands_only_as_the_table_allows(wire: Wire, stack: Stack) -> None:
    registered, _ = await wire.register()
    assert sources("pending") == ()  # nothing ever goes back to pending
    for current, target in itertools.product(STATES, MOVES):
        command_id = await send(stack, registered.node_id)
        async with stack.runtime.engine.begin() as conn:
            await conn.execute(
                sa.update(NodeCommand).where(NodeCommand.id == command_id).values(state=current)
            )
        async with transaction(stack.runtime.sessions) as session:
            await MOVES[target](session, registered.node_id, command_id)
        expected = target if allowed(current, target) else current
        assert await state_of(stack, command_id) == expected, (current, target)


async def test_a_node_settles_only_its_own_commands(wire: Wire, stack: Stack) -> None:
    mine, _ = await wire.register()
    other, _ = await wire.register()
    command_id = await send(stack, other.node_id)
    async with transaction(stack.runtime.sessions) as session:
        await repository.mark(session, [command_id], state="sent", now=utcnow(), via="connect")
        assert await repository.settle(session, mine.node_id, {command_id: "no"}, utcnow()) == 0
    assert await state_of(stack, command_id) == "sent"


# ---- outcomes over the wire ---------------------------------------------------------------


async def shown(client: httpx.AsyncClient, headers: dict[str, str], command_id: str) -> Any:
    response = await client.get(f"/api/v1/commands/{command_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_a_failure_on_the_connect_stream_is_recorded_with_its_reason(
    wire: Wire, stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    registered, _ = await wire.register()
    daemon = Daemon(wire, registered.node_token)
    try:
        bad = await send(stack, registered.node_id, "config", config={"metric_interval": "x"})
        good = await send(stack, registered.node_id)
        for _ in range(2):
            await daemon.next("command")
        failure = pb.CommandResult(command_id=bad, ok=False, error="metric_interval='x' is bad")
        done = pb.CommandResult(command_id=good, ok=True)
        await daemon.send(command_ack=pb.CommandAck(command_ids=[good], results=[failure, done]))
        await daemon.next("ack")
    finally:
        await daemon.close()
    failed = await shown(client, admin_headers, bad)
    assert (failed["state"], failed["error"]) == ("failed", "metric_interval='x' is bad")
    assert failed["done_at"] is not None
    assert (await shown(client, admin_headers, good))["state"] == "done"


async def test_heartbeats_that_carry_results_wait_for_them(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    token = bearer(registered.node_token)
    command_id = await send(stack, registered.node_id, "update")
    reporting = pb.HeartbeatRequest(node_uuid=node_uuid, command_results=pb.CommandResults())
    first = await wire.stub.Heartbeat(reporting, metadata=token)
    assert [c.id for c in first.commands] == [command_id]
    assert await state_of(stack, command_id) == "sent"  # not final: its outcome will come

    with_nul = pb.CommandResult(command_id=command_id, ok=False, error="cannot\x00 update")
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # as every string of every message
        await wire.stub.Heartbeat(
            pb.HeartbeatRequest(
                node_uuid=node_uuid, command_results=pb.CommandResults(results=[with_nul])
            ),
            metadata=token,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await state_of(stack, command_id) == "sent"

    failure = pb.CommandResult(command_id=command_id, ok=False, error="cannot update yet ")
    report = pb.HeartbeatRequest(
        node_uuid=node_uuid, command_results=pb.CommandResults(results=[failure])
    )
    second = await wire.stub.Heartbeat(report, metadata=token)
    assert list(second.commands) == []
    async with stack.runtime.sessions() as session:
        command = await session.get(NodeCommand, command_id)
        assert command is not None
        assert (command.state, command.error) == ("failed", "cannot update yet")

    # A late "done" for it changes nothing: failed is final.
    late = pb.CommandResult(command_id=command_id, ok=True)
    report = pb.HeartbeatRequest(
        node_uuid=node_uuid, command_results=pb.CommandResults(results=[late])
    )
    await wire.stub.Heartbeat(report, metadata=token)
    assert await state_of(stack, command_id) == "failed"


# ---- the daemon's own session against the real server ---------------------------------------


class Node:
    """A node owner that, as the real daemon, cannot install updates."""

    async def register_request(self) -> pb.RegisterRequest:
        return registration(str(uuid.uuid4()))

    async def agent_status(self) -> pb.AgentStatus:
        return pb.AgentStatus(status="running")

    async def metrics(self) -> pb.NodeMetrics:
        return pb.NodeMetrics(cpu_usage=1.0)

    async def on_command(self, command: pb.Command) -> None:
        if command.type == "update":
            raise CommandError("this daemon cannot install updates yet")

    def identity_changed(self, identity: Identity) -> None:
        pass

    def task_key_offered(self, pem: bytes) -> None:
        pass


@pytest.fixture
async def node_session(
    request: pytest.FixtureRequest, wire: Wire, grpc_service: GrpcService
) -> AsyncIterator[NodeSession]:
    channel = open_channel(f"127.0.0.1:{grpc_service.port}")
    settings = SessionSettings(
        transport=request.param,
        enrollment_token=wire.enrollment_token,
        intervals=Intervals(0.2, 60),  # the unary path picks commands up on heartbeats
        pin_intervals=True,
        backoff_initial=0.05,
        backoff_cap=0.2,
    )
    session = NodeSession(stub(channel), Node(), Identity(str(uuid.uuid4())), settings)
    running = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await channel.close()


@pytest.mark.parametrize("node_session", ["connect", "unary"], indirect=True)
async def test_the_daemon_reports_what_became_of_each_command(
    node_session: NodeSession,
    stack: Stack,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    async with asyncio.timeout(20):
        while node_session.identity.node_id is None:
            await asyncio.sleep(0.05)
    node_id = node_session.identity.node_id
    bodies: dict[str, dict[str, Any]] = {
        "ping": {"type": "ping"},
        "config": {"type": "config", "payload": {"config": {"heartbeat_interval": "often"}}},
        "update": {"type": "update", "payload": {"version": "9.9.9"}},
    }
    ids = {}
    for name, body in bodies.items():
        response = await client.post(
            "/api/v1/commands", json={"node_ids": [node_id], **body}, headers=admin_headers
        )
        assert response.status_code == 201, response.text
        ids[name] = response.json()["data"]["ids"][0]

    async with asyncio.timeout(20):
        while True:
            commands = {n: await shown(client, admin_headers, i) for n, i in ids.items()}
            if all(c["state"] in FINAL for c in commands.values()):
                break
            await asyncio.sleep(0.1)
    outcomes = {n: (c["state"], c["error"]) for n, c in commands.items()}
    assert outcomes["ping"] == ("done", None)
    assert outcomes["update"] == ("failed", "this daemon cannot install updates yet")
    assert outcomes["config"][0] == "failed"
    assert "heartbeat_interval" in outcomes["config"][1]  # the reason names what was wrong
