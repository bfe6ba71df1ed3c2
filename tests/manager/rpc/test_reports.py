"""Heartbeats and metrics over the unary RPCs: committed before answered, validated one by one."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from opscaffold.manager.errors import IngestBusy, InvalidArgument
from opscaffold.manager.ingest.flusher import Flusher, Report
from opscaffold.manager.ingest.validation import AgentRow, agent_row
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Agent, Node, NodeEvent, NodeMetric, NodeMetricLatest
from opscaffold.manager.observability.metrics import ManagerMetrics
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.conftest import require_service
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer


def metrics(at: int | None = None, **fields: Any) -> pb.NodeMetrics:
    values: dict[str, Any] = {
        "cpu_usage": 12.5,
        "memory_usage": 40.25,
        "memory_used": 3 << 30,
        "disk_usage": 55.0,
        "disk_used": 50 << 30,
        "network_rx": 1000,
        "network_tx": 2000,
        "load_avg_1": 0.5,
        "load_avg_5": 0.4,
        "load_avg_15": 0.3,
        "process_count": 150,
        "tcp_connections": 20,
    }
    return pb.NodeMetrics(timestamp=at if at is not None else int(time.time()), **(values | fields))


def agent_status(**fields: object) -> pb.AgentStatus:
    values: dict[str, Any] = {
        "version": "1.0.0",
        "status": "running",
        "pid": 4242,
        "cpu_usage": 1.5,
        "memory_usage": 50 << 20,
        "start_time": int(time.time()) - 60,
        "restart_count": 2,
    }
    return pb.AgentStatus(**(values | fields))


async def test_heartbeat_sets_online_with_the_managers_clock(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    response = await wire.stub.Heartbeat(
        pb.HeartbeatRequest(node_uuid=node_uuid, agent_status=agent_status(), timestamp=1),
        metadata=bearer(registered.node_token),
    )
    assert response.success
    async with stack.runtime.sessions() as session:
        node = await session.get(Node, registered.node_id)
        assert node is not None
        assert node.status == "online"
        assert node.last_heartbeat is not None
        assert node.last_heartbeat >= before  # the node's own timestamp (1) is not believed
        agent = (await session.scalars(sa.select(Agent))).one()
        assert (agent.pid, agent.status, agent.restart_count) == (4242, "running", 2)
        events = (await session.scalars(sa.select(NodeEvent.event).order_by(NodeEvent.id))).all()
        assert events == ["registered", "online"]


async def test_metrics_are_stored_once_and_latest_follows(wire: Wire, stack: Stack) -> None:
    registered, node_uuid = await wire.register()
    token = bearer(registered.node_token)
    now = int(time.time())
    for at in (now - 120, now - 60, now - 60):  # the last one is a resend
        request = pb.ReportMetricsRequest(
            node_uuid=node_uuid, metrics=metrics(at, cpu_usage=at % 100)
        )
        assert (await wire.stub.ReportMetrics(request, metadata=token)).success
    late = pb.ReportMetricsRequest(node_uuid=node_uuid, metrics=metrics(now - 600, cpu_usage=1))
    await wire.stub.ReportMetrics(late, metadata=token)
    async with stack.runtime.sessions() as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(NodeMetric))
        assert count == 3
        latest = NodeMetricLatest.__table__.c
        row = (
            await session.execute(
                sa.select(latest.timestamp, latest.cpu_usage).where(
                    latest.node_id == registered.node_id
                )
            )
        ).one()
        assert row.timestamp == datetime.fromtimestamp(now - 60, UTC).replace(tzinfo=None)
        assert row.cpu_usage == (now - 60) % 100  # the late, older report did not win


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"cpu_usage": math.nan}, "cpu_usage"),
        ({"cpu_usage": 1000.0}, "cpu_usage"),
        ({"load_avg_5": -1.0}, "load_avg_5"),
        ({"network_rx": -5}, "network_rx"),
    ],
)
async def test_bad_metrics_are_refused_naming_the_field(
    wire: Wire, fields: dict[str, Any], named: str
) -> None:
    registered, node_uuid = await wire.register()
    request = pb.ReportMetricsRequest(node_uuid=node_uuid, metrics=metrics(**fields))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportMetrics(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in (refused.value.details() or "")


async def test_history_shows_a_report_at_once(
    wire: Wire, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    registered, node_uuid = await wire.register()
    token = bearer(registered.node_token)
    now = int(time.time())
    # This second, and a second ahead (a node clock slightly fast, which ingestion accepts).
    for at, cpu in ((now, 11.0), (now + 1, 22.0)):
        request = pb.ReportMetricsRequest(node_uuid=node_uuid, metrics=metrics(at, cpu_usage=cpu))
        assert (await wire.stub.ReportMetrics(request, metadata=token)).success
    url = f"/api/v1/nodes/{registered.node_id}/metrics"
    response = await client.get(url, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert [point["cpu_usage"] for point in response.json()["data"]] == [11.0, 22.0]
    # An exclusive end inside a second still holds the report made at that second's start.
    end = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", ".5Z")
    response = await client.get(url, params={"end": end}, headers=admin_headers)
    assert [point["cpu_usage"] for point in response.json()["data"]] == [11.0]


@pytest.mark.parametrize("offset", [3600, -3 * 86400])
async def test_timestamps_outside_the_window_are_refused(wire: Wire, offset: int) -> None:
    registered, node_uuid = await wire.register()
    request = pb.ReportMetricsRequest(
        node_uuid=node_uuid, metrics=metrics(int(time.time()) + offset)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportMetrics(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "timestamp" in (refused.value.details() or "")


@pytest.mark.parametrize("field", ["version", "status", "last_error"])
async def test_nul_in_agent_status_is_refused_naming_the_field(wire: Wire, field: str) -> None:
    registered, node_uuid = await wire.register()
    status = agent_status(**{field: "running\x00"})
    request = pb.HeartbeatRequest(node_uuid=node_uuid, agent_status=status)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Heartbeat(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"agent_status.{field}" in (refused.value.details() or "")
    ok = pb.HeartbeatRequest(node_uuid=node_uuid, agent_status=agent_status())
    assert (await wire.stub.Heartbeat(ok, metadata=bearer(registered.node_token))).success


async def test_unknown_agent_status_is_refused(wire: Wire) -> None:
    registered, node_uuid = await wire.register()
    request = pb.HeartbeatRequest(node_uuid=node_uuid, agent_status=agent_status(status="dancing"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Heartbeat(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_naming_another_node_is_permission_denied(wire: Wire) -> None:
    mine, _ = await wire.register()
    _, other_uuid = await wire.register()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportMetrics(
            pb.ReportMetricsRequest(node_uuid=other_uuid, metrics=metrics()),
            metadata=bearer(mine.node_token),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_get_config_returns_the_effective_config(wire: Wire) -> None:
    registered, node_uuid = await wire.register()
    response = await wire.stub.GetConfig(
        pb.GetConfigRequest(node_uuid=node_uuid), metadata=bearer(registered.node_token)
    )
    assert response.config["heartbeat_interval"] == "30"
    assert response.config["metric_interval"] == "60"


async def test_offline_detection_and_recovery(wire: Wire, stack: Stack) -> None:
    from opscaffold.manager.kit.clock import utcnow
    from opscaffold.manager.node.jobs import detect_offline

    registered, node_uuid = await wire.register()
    token = bearer(registered.node_token)
    await wire.stub.Heartbeat(pb.HeartbeatRequest(node_uuid=node_uuid), metadata=token)
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.update(Node).values(last_heartbeat=sa.literal(datetime(2020, 1, 1))))
    async with stack.runtime.sessions() as session, session.begin():
        await detect_offline(session, stack.settings, utcnow())
    await wire.stub.Heartbeat(pb.HeartbeatRequest(node_uuid=node_uuid), metadata=token)
    async with stack.runtime.sessions() as session:
        events = (
            await session.execute(
                sa.select(NodeEvent.event, NodeEvent.from_status).order_by(NodeEvent.id)
            )
        ).all()
    assert [tuple(e) for e in events] == [
        ("registered", None),
        ("online", "unknown"),
        ("offline", "online"),
        ("online", "offline"),
    ]


async def test_reports_of_a_node_deleted_while_queued_are_skipped(wire: Wire, stack: Stack) -> None:
    from opscaffold.manager.errors import NodeGone
    from opscaffold.manager.ingest.flusher import Flusher, Report
    from opscaffold.manager.ingest.validation import metric_row
    from opscaffold.manager.kit.clock import utcnow

    registered, _ = await wire.register()
    flusher = Flusher(stack.runtime.sessions, stack.runtime.metrics, max_delay=10.0)
    flusher.start()
    try:
        row = metric_row(registered.node_id, metrics(), utcnow(), timedelta(days=2))
        queued = flusher.submit(Report(registered.node_id, heartbeat=True, metric=row))
        async with stack.runtime.engine.begin() as conn:
            await conn.execute(sa.delete(Node).where(Node.id == registered.node_id))
    finally:
        await flusher.stop()  # flushes what is queued
    with pytest.raises(NodeGone):
        await queued
    async with stack.runtime.sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Node)) == 0
        assert await session.scalar(sa.select(sa.func.count()).select_from(NodeMetric)) == 0
        assert await session.scalar(sa.select(sa.func.count()).select_from(Agent)) == 0


async def test_a_full_queue_answers_resource_exhausted(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered, node_uuid = await wire.register()
    monkeypatch.setattr(wire.service.channel.flusher._batches, "_max_queue", 0)
    request = pb.ReportMetricsRequest(node_uuid=node_uuid, metrics=metrics())
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await wire.stub.ReportMetrics(request, metadata=bearer(registered.node_token))
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def _run_offline_check(stack: Stack) -> None:
    """The real job, claimed and run by the job runner as the Manager runs it."""
    from opscaffold.manager.app import all_jobs
    from opscaffold.manager.jobs.runner import JobRunner, tick_of
    from opscaffold.manager.kit.clock import utcnow

    job = all_jobs()["node.detect_offline"]
    runner = JobRunner(stack.runtime.sessions, stack.settings, {job.name: job}, "test-replica")
    assert await runner.run_once(job, tick_of(utcnow(), job.every(stack.settings)))


async def _age(stack: Stack, node_id: int, column: str, by: timedelta) -> None:
    """Move a node's registration or last heartbeat into the past, beyond the timeout."""
    async with stack.runtime.engine.begin() as conn:
        at = datetime.now(UTC).replace(tzinfo=None) - by
        await conn.execute(sa.update(Node).where(Node.id == node_id).values({column: at}))


async def _node_status(client: httpx.AsyncClient, headers: dict[str, str], node_id: int) -> str:
    response = await client.get(f"/api/v1/nodes/{node_id}", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["status"])


async def test_a_node_never_heard_from_after_registering_goes_offline(
    wire: Wire, stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    silent, _ = await wire.register()
    fresh, _ = await wire.register()
    timeout = stack.settings.node.heartbeat_timeout
    await _age(stack, silent.node_id, "created_at", timeout + timedelta(seconds=5))

    await _run_offline_check(stack)

    assert await _node_status(client, admin_headers, silent.node_id) == "offline"
    # Registered within the timeout: it still has time to send its first heartbeat.
    assert await _node_status(client, admin_headers, fresh.node_id) == "unknown"
    async with stack.runtime.sessions() as session:
        events = await session.execute(
            sa.select(NodeEvent.event, NodeEvent.from_status)
            .where(NodeEvent.node_id == silent.node_id)
            .order_by(NodeEvent.id)
        )
        assert [tuple(e) for e in events] == [("registered", None), ("offline", "unknown")]


async def test_the_agent_of_an_offline_node_is_unknown_until_it_reports_again(
    wire: Wire, stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    registered, node_uuid = await wire.register()
    token = bearer(registered.node_token)
    beat = pb.HeartbeatRequest(node_uuid=node_uuid, agent_status=agent_status(status="running"))
    await wire.stub.Heartbeat(beat, metadata=token)
    timeout = stack.settings.node.heartbeat_timeout
    await _age(stack, registered.node_id, "last_heartbeat", timeout + timedelta(seconds=5))

    await _run_offline_check(stack)

    agent_url = f"/api/v1/nodes/{registered.node_id}/agent"
    agent = (await client.get(agent_url, headers=admin_headers)).json()["data"]
    assert (agent["status"], agent["reported_status"]) == ("unknown", "running")
    listed = (await client.get("/api/v1/nodes", headers=admin_headers)).json()["data"]["items"]
    assert [(n["status"], n["agent"]["status"]) for n in listed] == [("offline", "unknown")]

    await wire.stub.Heartbeat(beat, metadata=token)
    agent = (await client.get(agent_url, headers=admin_headers)).json()["data"]
    assert (agent["status"], agent["reported_status"]) == ("running", "running")


def _unstorable_agent(stack: Stack, node_id: int) -> AgentRow:
    """An agent row that passed no validation: PostgreSQL refuses its NUL, the others a status
    outside the column's enumeration."""
    values = agent_row(node_id, agent_status(), utcnow()).values
    if stack.backend == "postgres":
        return AgentRow(node_id, values | {"version": "1.0\x00"})
    return AgentRow(node_id, values | {"status": "dancing"})


async def test_a_report_the_database_refuses_fails_alone(wire: Wire, stack: Stack) -> None:
    nodes = [await wire.register() for _ in range(5)]
    bad_node, _ = await wire.register()
    channel = wire.service.channel
    # Holds the batch until all six reports are in it; the test's timeout catches a miss.
    flusher = Flusher(stack.runtime.sessions, stack.runtime.metrics, max_batch=6, max_delay=30)
    flusher.start()
    previous, channel.flusher = channel.flusher, flusher
    try:
        bad = flusher.submit(
            Report(bad_node.node_id, agent=_unstorable_agent(stack, bad_node.node_id))
        )
        heartbeats = [
            wire.stub.Heartbeat(
                pb.HeartbeatRequest(node_uuid=node_uuid, agent_status=agent_status()),
                metadata=bearer(registered.node_token),
            )
            for registered, node_uuid in nodes
        ]
        answers = await asyncio.gather(*heartbeats)
        with pytest.raises(InvalidArgument):
            await bad
    finally:
        channel.flusher = previous
        await flusher.stop()
    assert all(answer.success for answer in answers)
    async with stack.runtime.sessions() as session:
        online = await session.scalars(sa.select(Node.id).where(Node.status == "online"))
        agents = await session.scalars(sa.select(Agent.node_id).where(Agent.status == "running"))
        assert sorted(online) == sorted(r.node_id for r, _ in nodes)
        assert sorted(agents) == sorted(r.node_id for r, _ in nodes)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",  # nothing listens there
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",  # up, but without our tables
    ],
)
async def test_when_no_report_can_be_stored_every_sender_is_told_to_retry(url: str) -> None:
    """A batch that fails whole, however it is split, is the database's fault, not a
    report's: nobody is told their report cannot be stored (the daemon would drop it)."""
    require_service("postgres")
    engine = create_async_engine(url)
    flusher = Flusher(async_sessionmaker(engine), ManagerMetrics(), max_batch=4, max_delay=30)
    flusher.start()
    try:
        reports = [flusher.submit(Report(node_id, heartbeat=True)) for node_id in range(1, 5)]
        answers = await asyncio.gather(*reports, return_exceptions=True)
    finally:
        await flusher.stop()
        await engine.dispose()
    assert [type(a) for a in answers] == [IngestBusy] * 4, answers
