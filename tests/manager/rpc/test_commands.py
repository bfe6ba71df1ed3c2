"""Commands reach a daemon over what it holds: Connect (acknowledged), SubscribeUpdates, or
the heartbeat response — at least once over Connect, exactly once over the others."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.command import service as command_service
from opscaffold.manager.db import transaction
from opscaffold.manager.models import NodeCommand
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer
from tests.manager.rpc.test_reports import metrics


async def send(stack: Stack, node_id: int, kind: str = "ping", **payload: object) -> str:
    async with transaction(stack.runtime.sessions) as session:
        ids = await command_service.send(
            session, stack.runtime.command_bus, [node_id], kind, payload, timedelta(minutes=5)
        )
    return ids[0]


async def state_of(stack: Stack, command_id: str) -> str:
    async with stack.runtime.sessions() as session:
        command = await session.get(NodeCommand, command_id)
        assert command is not None
        return command.state


class Daemon:
    """The daemon's end of a Connect stream, driven by the test."""

    def __init__(self, wire: Wire, token: str) -> None:
        self.outbox: asyncio.Queue[pb.DaemonMessage | None] = asyncio.Queue()
        self.call = wire.stub.Connect(self._requests(), metadata=bearer(token))
        self.seq = 0

    async def _requests(self) -> AsyncIterator[pb.DaemonMessage]:
        while (message := await self.outbox.get()) is not None:
            yield message

    async def send(self, **body: Any) -> int:
        self.seq += 1
        await self.outbox.put(pb.DaemonMessage(seq=self.seq, **body))
        return self.seq

    async def next(self, kind: str) -> pb.ManagerMessage:
        while True:
            message: pb.ManagerMessage = await asyncio.wait_for(self.call.read(), 10)
            assert message is not grpc.aio.EOF
            if message.WhichOneof("body") == kind:
                return message

    async def close(self) -> None:
        await self.outbox.put(None)
        self.call.cancel()


async def test_connect_acks_cumulatively_and_refuses_bad_reports(wire: Wire) -> None:
    registered, node_uuid = await wire.register()
    daemon = Daemon(wire, registered.node_token)
    try:
        await daemon.send(heartbeat=pb.HeartbeatRequest(node_uuid=node_uuid))
        good = pb.ReportMetricsRequest(node_uuid=node_uuid, metrics=metrics())
        bad = pb.ReportMetricsRequest(node_uuid=node_uuid, metrics=metrics(cpu_usage=5000.0))
        await daemon.send(metrics=good)
        last = await daemon.send(metrics=bad)
        refused: list[pb.Refusal] = []
        while True:
            ack = (await daemon.next("ack")).ack
            refused.extend(ack.refused)
            if ack.seq == last:
                break
        assert [(r.seq, r.code) for r in refused] == [(last, "INVALID_ARGUMENT")]
        assert "cpu_usage" in refused[0].message
    finally:
        await daemon.close()


async def test_ping_reaches_connect_once_and_is_acknowledged(wire: Wire, stack: Stack) -> None:
    registered, _ = await wire.register()
    daemon = Daemon(wire, registered.node_token)
    try:
        await daemon.send(command_ack=pb.CommandAck())  # the stream is open once this is acked
        await daemon.next("ack")
        command_id = await send(stack, registered.node_id)
        command = (await daemon.next("command")).command
        assert (command.id, command.type) == (command_id, "ping")
        assert await state_of(stack, command_id) == "sent"
        await daemon.send(command_ack=pb.CommandAck(command_ids=[command_id]))
        await daemon.next("ack")
        assert await state_of(stack, command_id) == "done"
    finally:
        await daemon.close()


async def test_unacknowledged_commands_are_delivered_again(
    wire: Wire, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redeliver at once (times are kept to the second, so "before now" needs a margin).
    monkeypatch.setattr(command_service, "REDELIVER_AFTER", timedelta(seconds=-1))
    registered, _ = await wire.register()
    command_id = await send(stack, registered.node_id)
    first = Daemon(wire, registered.node_token)
    assert (await first.next("command")).command.id == command_id
    await first.close()
    second = Daemon(wire, registered.node_token)  # reconnects without having acknowledged
    try:
        assert (await second.next("command")).command.id == command_id
    finally:
        await second.close()


async def test_a_command_not_acknowledged_is_written_again_on_the_same_stream(
    wire: Wire, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command_service, "REDELIVER_AFTER", timedelta(seconds=-1))
    registered, _ = await wire.register()
    daemon = Daemon(wire, registered.node_token)
    try:
        await daemon.send(command_ack=pb.CommandAck())  # the stream is open once this is acked
        await daemon.next("ack")
        command_id = await send(stack, registered.node_id)
        assert (await daemon.next("command")).command.id == command_id
        assert (await daemon.next("command")).command.id == command_id  # due again at once
    finally:
        await daemon.close()


async def test_an_acknowledged_command_does_not_send_the_stream_back_to_the_outbox(
    wire: Wire, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream looks at the outbox again when a command it wrote would be due for
    redelivery; once the daemon has acknowledged it, there is nothing to look for."""
    monkeypatch.setattr(command_service, "REDELIVER_AFTER", timedelta(seconds=1))
    registered, _ = await wire.register()
    reads: list[float] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM node_commands" in statement and "LIMIT" in statement.upper():
            reads.append(time.monotonic())  # a stream's read of its node's commands

    engine = stack.runtime.engine.sync_engine
    daemon = Daemon(wire, registered.node_token)
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        await daemon.send(command_ack=pb.CommandAck())
        await daemon.next("ack")
        command_id = await send(stack, registered.node_id)
        assert (await daemon.next("command")).command.id == command_id
        await daemon.send(command_ack=pb.CommandAck(command_ids=[command_id]))
        await daemon.next("ack")
        acknowledged = time.monotonic()
        # The look-again is due 2 s after the delivery (REDELIVER_AFTER + 1 s).
        await asyncio.sleep(3)
        assert [t for t in reads if t > acknowledged] == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
        await daemon.close()


async def test_config_command_over_subscribe_updates_once(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    stream = wire.stub.SubscribeUpdates(
        pb.SubscribeRequest(node_uuid=node_uuid), metadata=bearer(registered.node_token)
    )
    command_id = await send(stack, registered.node_id, "config", config={"metric_interval": "15"})
    try:
        event: pb.UpdateEvent = await asyncio.wait_for(stream.read(), 10)
        assert event.event_type == "config_change"
        assert event.command_id == command_id
        assert json.loads(event.payload) == {"config": {"metric_interval": "15"}}
        assert await state_of(stack, command_id) == "done"
    finally:
        stream.cancel()


async def test_an_update_order_over_subscribe_updates_fills_the_designs_fields(
    wire: Wire, stack: Stack
) -> None:
    registered, node_uuid = await wire.register()
    manifest = {
        "component": "agent",
        "version": "2.1.0",
        "os": "linux",
        "arch": "amd64",
        "size": 10,
        "sha256": "ab" * 32,
        "created_at": "2026-12-05T05:00:00Z",
    }
    order = {
        "record_id": 7,
        "manifest": manifest,
        "signature": base64.b64encode(b"signed").decode(),
        "download_url": "https://manager.example/api/v1/versions/3/download",
        "rollback": False,
    }
    stream = wire.stub.SubscribeUpdates(
        pb.SubscribeRequest(node_uuid=node_uuid), metadata=bearer(registered.node_token)
    )
    command_id = await send(stack, registered.node_id, "update", **order)
    try:
        event: pb.UpdateEvent = await asyncio.wait_for(stream.read(), 10)
    finally:
        stream.cancel()
    assert (event.event_type, event.command_id) == ("version_update", command_id)
    assert (event.component, event.version) == ("agent", "2.1.0")
    assert (event.hash_sha256, event.signature) == ("ab" * 32, b"signed")
    assert event.download_url == order["download_url"]
    assert json.loads(event.payload) == order


async def test_heartbeat_carries_commands_when_no_stream_is_held(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    command_id = await send(stack, registered.node_id)
    token = bearer(registered.node_token)
    first = await wire.stub.Heartbeat(pb.HeartbeatRequest(node_uuid=node_uuid), metadata=token)
    assert [c.id for c in first.commands] == [command_id]
    second = await wire.stub.Heartbeat(pb.HeartbeatRequest(node_uuid=node_uuid), metadata=token)
    assert list(second.commands) == []
    assert await state_of(stack, command_id) == "done"


async def test_admin_sends_a_ping_over_rest(
    wire: Wire, client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    registered, node_uuid = await wire.register()
    sent = await client.post(
        "/api/v1/commands",
        json={"node_ids": [registered.node_id], "type": "ping"},
        headers=admin_headers,
    )
    assert sent.status_code == 201
    command_id = sent.json()["data"]["ids"][0]
    beat = await wire.stub.Heartbeat(
        pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(registered.node_token)
    )
    assert [c.id for c in beat.commands] == [command_id]
    shown = await client.get(f"/api/v1/commands/{command_id}", headers=admin_headers)
    assert shown.json()["data"]["state"] == "done"
    assert shown.json()["data"]["delivered_via"] == "heartbeat"
    missing = await client.post(
        "/api/v1/commands", json={"node_ids": [999999], "type": "ping"}, headers=admin_headers
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == 2001
    async with stack.runtime.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(NodeCommand)) == 1
