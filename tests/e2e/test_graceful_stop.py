"""SIGTERM to a Manager holding daemon streams: it answers what it read, ends every stream
itself (UNAVAILABLE, so daemons reconnect), flushes, removes its stream presence from Redis,
and exits well within the gRPC grace period; nothing it acknowledged is lost."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import redis

from opscaffold.manager.rpc.servicer import SHUTTING_DOWN
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc
from tests.e2e.processes import Manager
from tests.fixtures.redis_server import RedisServer
from tests.manager.rpc.conftest import bearer, registration
from tests.manager.rpc.test_reports import metrics

ENROLLMENT_TOKEN = "ose_e2e-enrollment-token-0123456789"
GRACE_S = 5.0  # the gRPC server's grace period on stop (app.Background)
STREAMS = 5
REPORTS = 500  # most per stream: sent before and while the Manager stops
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def manager(tmp_path: Path, redis_server: RedisServer) -> Iterator[Manager]:
    instance = Manager(
        tmp_path,
        {
            "OPS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
            "OPS_REDIS__ENABLED": "true",
            "OPS_REDIS__HOST": "127.0.0.1",
            "OPS_REDIS__PORT": str(redis_server.port),
            "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
            "OPS_LOG__LEVEL": "warning",
        },
    )
    instance.start()
    yield instance
    instance.ensure_stopped()


class Stream:
    """One daemon's Connect stream: what it sent, what the Manager acknowledged, how it ended."""

    def __init__(self, stub: daemon_pb2_grpc.DaemonServiceStub, node_uuid: str, token: str):
        self.node_uuid = node_uuid
        self.outbox: asyncio.Queue[pb.DaemonMessage] = asyncio.Queue()
        self.call = stub.Connect(self._requests(), metadata=bearer(token))
        self.sent: dict[int, int] = {}  # seq -> the metric's timestamp
        self.acked = 0
        self.ended: grpc.aio.AioRpcError | None = None

    async def _requests(self) -> AsyncIterator[pb.DaemonMessage]:
        while True:
            yield await self.outbox.get()

    def report(self, at: int) -> int:
        seq = len(self.sent) + 1
        self.sent[seq] = at
        body = pb.ReportMetricsRequest(node_uuid=self.node_uuid, metrics=metrics(at))
        self.outbox.put_nowait(pb.DaemonMessage(seq=seq, metrics=body))
        return seq

    async def read_until_acked(self, seq: int) -> None:
        while self.acked < seq:
            await self._read_one()

    async def keep_reporting(self, base: int, until: asyncio.Event) -> None:
        """Report as a busy daemon does, until told to stop."""
        for i in range(1, REPORTS + 1):
            if until.is_set():
                return
            self.report(base + i)
            await asyncio.sleep(0.002)

    async def read_to_end(self) -> None:
        try:
            while True:
                await self._read_one()
        except grpc.aio.AioRpcError as error:
            self.ended = error

    async def _read_one(self) -> None:
        message = await self.call.read()
        assert message is not grpc.aio.EOF, "the stream ended without a status"
        if message.WhichOneof("body") == "ack":
            assert not message.ack.refused, message.ack.refused
            self.acked = max(self.acked, message.ack.seq)


def stored_timestamps(db: Path) -> set[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT n.uuid, m.timestamp FROM node_metrics m JOIN nodes n ON n.id = m.node_id"
        ).fetchall()
    return {
        (node, int(datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp())) for node, at in rows
    }


async def test_sigterm_ends_streams_first_and_exits_within_grace(
    manager: Manager, redis_server: RedisServer, tmp_path: Path
) -> None:
    assert manager.proc is not None
    presence = redis.Redis(port=redis_server.port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{manager.grpc_port}") as channel:
        stub = daemon_pb2_grpc.DaemonServiceStub(channel)
        streams = []
        for _ in range(STREAMS):
            node_uuid = str(uuid.uuid4())
            registered = await stub.Register(
                registration(node_uuid), metadata=bearer(ENROLLMENT_TOKEN)
            )
            streams.append(Stream(stub, node_uuid, registered.node_token))
        subscriber_uuid = str(uuid.uuid4())
        subscriber = await stub.Register(
            registration(subscriber_uuid), metadata=bearer(ENROLLMENT_TOKEN)
        )
        updates = stub.SubscribeUpdates(
            pb.SubscribeRequest(node_uuid=subscriber_uuid), metadata=bearer(subscriber.node_token)
        )
        await updates.initial_metadata()  # sent once the stream is held
        base = int(time.time()) - 600
        for stream in streams:  # every stream is held once its first report is acknowledged
            await asyncio.wait_for(stream.read_until_acked(stream.report(base)), 20)
        assert len(presence.keys("ops:stream:*")) == STREAMS + 1

        # Reports are on their way when SIGTERM comes. The senders stop then, as a client
        # writing into a closing connection can lose the status the server sent it.
        sigterm = asyncio.Event()
        senders = [asyncio.create_task(s.keep_reporting(base, sigterm)) for s in streams]
        await asyncio.wait_for(streams[0].read_until_acked(10), 20)
        stopped_at = time.monotonic()
        manager.proc.send_signal(signal.SIGTERM)
        sigterm.set()
        await asyncio.wait_for(asyncio.gather(*(s.read_to_end() for s in streams)), 30)
        with pytest.raises(grpc.aio.AioRpcError) as subscription:
            await asyncio.wait_for(updates.read(), 30)
        ended_s = time.monotonic() - stopped_at
        await asyncio.gather(*senders)
        code = await asyncio.to_thread(manager.proc.wait, 30)
        exited_s = time.monotonic() - stopped_at

    assert code in (0, -signal.SIGTERM), code
    for stream in streams:  # ended by the server, cleanly, not cut at the end of the grace
        assert stream.ended is not None
        assert (stream.ended.code(), stream.ended.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            SHUTTING_DOWN,
        )
    assert (subscription.value.code(), subscription.value.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        SHUTTING_DOWN,
    )
    assert ended_s < GRACE_S / 2, f"streams ended {ended_s:.1f} s after SIGTERM"
    assert exited_s < GRACE_S, f"the Manager exited {exited_s:.1f} s after SIGTERM"
    assert presence.keys("ops:stream:*") == []
    log = manager.log.read_text()
    assert '"level": "error"' not in log, log

    stored = stored_timestamps(tmp_path / "manager.db")
    for stream in streams:  # everything acknowledged was committed
        acked = {(stream.node_uuid, stream.sent[seq]) for seq in range(1, stream.acked + 1)}
        assert acked <= stored
    presence.close()
