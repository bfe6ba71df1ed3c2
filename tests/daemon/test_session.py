"""The session's own logic, with a real channel to an address where no Manager listens (the
Manager's server is tested against this client end to end elsewhere)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from opscaffold.daemon.commands import CommandError, Intervals
from opscaffold.daemon.link import open_channel, stub
from opscaffold.daemon.session import (
    ConnectionLost,
    Identity,
    NodeSession,
    SessionSettings,
    Stats,
)
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc
from tests.daemon.helpers import closed_port_target
from tests.helpers import wait_until

UUID = "6f1c2a57-3d0e-4c1f-9a59-1b8e0f6c2d41"


class Owner:
    """A node that reports fixed values and records the commands it carries out."""

    def __init__(self) -> None:
        self.carried_out: list[str] = []
        self.update_may_finish = asyncio.Event()

    async def register_request(self) -> pb.RegisterRequest:
        return pb.RegisterRequest(hostname="test")

    async def agent_status(self) -> pb.AgentStatus:
        return pb.AgentStatus(status="running")

    async def metrics(self) -> pb.NodeMetrics:
        return pb.NodeMetrics(cpu_usage=1.0)

    async def on_command(self, command: pb.Command) -> None:
        if command.type == "bad":
            raise CommandError("cannot")
        if command.type == "update":
            await self.update_may_finish.wait()
        self.carried_out.append(command.id)

    def identity_changed(self, identity: Identity) -> None:
        raise AssertionError("no Manager here, so no identity")

    def task_key_offered(self, pem: bytes) -> None:
        pass


@pytest.fixture
async def channel() -> AsyncIterator[Any]:
    channel = open_channel(closed_port_target())
    yield channel
    await channel.close()


def make_session(channel: Any, **settings: Any) -> tuple[NodeSession, Owner]:
    owner = Owner()
    base = {"intervals": Intervals(30, 60), "backoff_cap": 1.0, **settings}
    return NodeSession(stub(channel), owner, Identity(UUID), SessionSettings(**base)), owner


def config_command(command_id: str, **values: str) -> pb.Command:
    return pb.Command(id=command_id, type="config", payload=json.dumps({"config": values}).encode())


async def test_config_command_changes_intervals_and_is_acknowledged(channel: Any) -> None:
    session, owner = make_session(channel)
    command = config_command("c1", heartbeat_interval="5", metric_interval="7")
    await session.handle_command(command)
    assert session.intervals == Intervals(5, 7)
    assert owner.carried_out == ["c1"]
    assert session.outbox.pending_acks() == ["c1"]


async def test_a_redelivered_command_runs_once_but_is_acknowledged_again(channel: Any) -> None:
    session, owner = make_session(channel)
    ping = pb.Command(id="p1", type="ping")
    await session.handle_command(ping)
    await session.handle_command(ping)
    assert owner.carried_out == ["p1"]
    assert session.outbox.pending_acks() == ["p1", "p1"]


def results(session: NodeSession) -> list[tuple[str, bool, str]]:
    return [(r.command_id, r.ok, r.error) for r in session.outbox.pending_results()]


async def test_an_expired_command_fails_without_running(channel: Any) -> None:
    session, owner = make_session(channel)
    stale = pb.Command(id="r1", type="restart", expires_at=int(time.time()) - 10)
    await session.handle_command(stale)
    assert owner.carried_out == []
    assert results(session) == [("r1", False, "expired before it reached the node")]


async def test_a_command_that_cannot_be_done_fails_with_the_reason(channel: Any) -> None:
    session, owner = make_session(channel)
    await session.handle_command(pb.Command(id="b1", type="bad"))
    bad_config = pb.Command(id="b2", type="config", payload=b"{not json")
    await session.handle_command(bad_config)
    await session.handle_command(config_command("b3", heartbeat_interval="often"))
    assert session.intervals == Intervals(30, 60)
    assert owner.carried_out == []
    b1, b2, b3 = results(session)
    assert b1 == ("b1", False, "cannot")
    assert b2[:2] == ("b2", False)
    assert b2[2].startswith("config payload is not JSON")
    assert b3[:2] == ("b3", False)
    assert "heartbeat_interval" in b3[2]
    # Redelivered, it is not carried out again, and it fails the same way.
    await session.handle_command(pb.Command(id="b1", type="bad"))
    assert results(session)[-1] == ("b1", False, "cannot")


async def test_a_long_command_does_not_hold_up_the_others(channel: Any) -> None:
    session, owner = make_session(channel)
    update = pb.Command(id="u1", type="update")
    await session.handle_command(update)
    await session.handle_command(pb.Command(id="p1", type="ping"))
    await session.handle_command(update)  # redelivered while under way: no result yet
    assert results(session) == [("p1", True, "")]

    owner.update_may_finish.set()
    await wait_until(lambda: len(results(session)) == 2, what="the update reports")
    assert results(session)[-1] == ("u1", True, "")
    assert owner.carried_out == ["p1", "u1"]


async def test_pinned_intervals_ignore_config_commands(channel: Any) -> None:
    session, _ = make_session(channel, pin_intervals=True)
    await session.handle_command(config_command("c2", heartbeat_interval="5"))
    assert session.intervals == Intervals(30, 60)


async def test_reports_pile_up_in_order_while_the_manager_is_unreachable(channel: Any) -> None:
    session, _ = make_session(channel, intervals=Intervals(0.05, 0.05), jitter=0.0)
    running = asyncio.create_task(session.run())
    await wait_until(lambda: session.outbox.metrics_held() >= 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    pending = session.outbox.pending()
    assert [r.kind for r in pending].count("heartbeat") == 1  # coalesced
    assert pending[0].kind == "heartbeat"
    orders = [r.order for r in pending if r.kind == "metrics"]
    assert orders == sorted(orders)
    assert session.stats.errors["UNAVAILABLE"] >= 1
    assert session.stats.registrations == 0


async def test_a_shorter_interval_takes_effect_without_waiting_out_the_old(channel: Any) -> None:
    session, _ = make_session(channel, intervals=Intervals(1000, 1000), jitter=0.0)
    running = asyncio.create_task(session.run())
    try:
        await wait_until(lambda: session.outbox.metrics_held() == 1)  # the first, at start
        await session.handle_command(config_command("c3", metric_interval="1"))
        await wait_until(lambda: session.outbox.metrics_held() >= 3, timeout=10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_stats_percentiles() -> None:
    stats = Stats()
    for ms in range(1, 101):
        stats.record_latency(ms / 1000)
    assert stats.percentile(50) == 0.051
    assert stats.percentile(99) == 0.1
    assert Stats().percentile(50) is None


def test_stats_keep_a_bounded_sample() -> None:
    stats = Stats(latency_samples=10)
    for value in range(1000):
        stats.record_latency(float(value))
    assert len(stats._latencies) == 10


@pytest.mark.parametrize("heartbeat", [-1, 86_401, 2**31 - 1])
async def test_a_register_answer_with_an_interval_out_of_range_keeps_the_current(
    channel: Any, heartbeat: int, caplog: pytest.LogCaptureFixture
) -> None:
    session, _ = make_session(channel)
    answer = pb.RegisterResponse(node_id=1, heartbeat_interval=heartbeat, metric_interval=15)
    session.adopt_intervals(answer)
    assert session.intervals == Intervals(30, 15)
    assert f"heartbeat_interval={heartbeat}" in caplog.text
    assert "keeping 30s" in caplog.text


class EndingManager(daemon_pb2_grpc.DaemonServiceServicer):
    """A Manager that registers anyone and ends every Connect stream at once, as one that is
    going away does."""

    def __init__(self) -> None:
        self.streams = 0

    async def Register(self, request: pb.RegisterRequest, context: Any) -> pb.RegisterResponse:
        return pb.RegisterResponse(node_id=7, node_token="node-token")

    async def Connect(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        self.streams += 1
        return
        yield  # an async generator that yields nothing


@pytest.fixture
async def ending_manager() -> AsyncIterator[tuple[EndingManager, str]]:
    servicer = EndingManager()  # type: ignore[abstract]  # serves only Register and Connect
    server = grpc.aio.server()
    daemon_pb2_grpc.add_DaemonServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(grace=None)


class Registering(Owner):
    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    async def register_request(self) -> pb.RegisterRequest:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("an error nobody planned for")
        return pb.RegisterRequest(hostname="test")

    def identity_changed(self, identity: Identity) -> None:
        pass

    def task_key_offered(self, pem: bytes) -> None:
        pass


async def test_writing_to_a_stream_that_ended_is_a_lost_connection(
    ending_manager: tuple[EndingManager, str],
) -> None:
    _, target = ending_manager
    channel = open_channel(target)
    try:
        session = NodeSession(stub(channel), Registering(), Identity(UUID), SessionSettings())
        call = stub(channel).Connect()
        assert await call.code() == grpc.StatusCode.OK  # the Manager has ended it
        session.outbox.put_heartbeat(pb.HeartbeatRequest(node_uuid=UUID))
        # The writer stops as the reader would; asyncio.InvalidStateError used to escape
        # and end the node's session for good.
        with pytest.raises(ConnectionLost):
            await session._stream_writer(call)
    finally:
        await channel.close()


async def test_no_error_of_the_transport_ends_a_session(
    ending_manager: tuple[EndingManager, str],
) -> None:
    servicer, target = ending_manager
    channel = open_channel(target)
    settings = SessionSettings(backoff_initial=0.01, backoff_cap=0.05, jitter=0.0)
    session = NodeSession(stub(channel), Registering(failures=2), Identity(UUID), settings)
    running = asyncio.create_task(session.run())
    try:
        await wait_until(lambda: servicer.streams >= 5 or running.done())
        assert not running.done(), running
        assert session.stats.errors["RuntimeError"] == 2
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await channel.close()
