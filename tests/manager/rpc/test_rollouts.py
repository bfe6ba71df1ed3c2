"""Rollouts moving wave by wave through the job runner's real ticks, with daemons reporting
their updates over real gRPC."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from opscaffold.manager.app import all_jobs
from opscaffold.manager.command import repository as command_repository
from opscaffold.manager.db import transaction
from opscaffold.manager.jobs.runner import JobRunner
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Agent, Node, NodeCommand, Rollout, UpdateRecord
from opscaffold.manager.rollout import orchestrator
from opscaffold.manager.rollout.repository import STUCK
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.api.test_versions import upload
from tests.manager.conftest import Stack, login
from tests.manager.conftest import bearer as http_bearer
from tests.manager.factories import add_agent
from tests.manager.rpc.conftest import Wire, bearer
from tests.manager.rpc.test_commands import Daemon

TICKS = itertools.count()
SUCCESS = ("downloading", "installing", "verifying", "success")


class Fleet:
    """Registered daemons and an admin who deploys to them."""

    def __init__(self, stack: Stack, wire: Wire, client: httpx.AsyncClient) -> None:
        self.stack, self.wire, self.client = stack, wire, client
        self.tokens: dict[int, str] = {}
        self.headers: dict[str, str] = {}

    async def start(self, nodes: int) -> list[int]:
        self.headers = http_bearer((await login(self.client))["token"])
        for _ in range(nodes):
            registered, _ = await self.wire.register()
            self.tokens[registered.node_id] = registered.node_token
        await _set_nodes(self.stack, status="online")
        return sorted(self.tokens)

    async def deploy(self, **fields: Any) -> str:
        uploaded = await upload(self.client, self.headers, "2.0.0")
        assert uploaded.status_code == 201, uploaded.text
        body = {
            "component": "daemon",
            "version_id": uploaded.json()["data"]["id"],
            "target_type": "all",
            **fields,
        }
        response = await self.client.post("/api/v1/updates/deploy", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["batch_id"])

    async def report(self, node_id: int, *states: str) -> None:
        """The node's daemon reports these states of its order, as a real daemon would."""
        record_id = await self.order_of(node_id)
        for state in states:
            request = pb.UpdateStatusReport(record_id=record_id, status=state)
            answer = await self.wire.stub.ReportUpdateStatus(
                request, metadata=bearer(self.tokens[node_id])
            )
            assert answer.success

    async def order_of(self, node_id: int) -> int:
        [command] = await commands(self.stack, node_id)
        return int(command.payload["record_id"])


async def _set_nodes(stack: Stack, **values: Any) -> None:
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.update(Node).values(**values))


async def tick(stack: Stack) -> None:
    """One real tick of `rollout.advance`, claimed like any other."""
    job = all_jobs()["rollout.advance"]
    runner = JobRunner(
        stack.runtime.sessions,
        stack.settings,
        {job.name: job},
        "test-replica",
        stack.runtime.command_bus,  # as the app's runner has
    )
    assert await runner.run_once(job, datetime(2001, 1, 1) + timedelta(seconds=next(TICKS)))


async def commands(stack: Stack, node_id: int | None = None) -> list[NodeCommand]:
    stmt = sa.select(NodeCommand).where(NodeCommand.type == "update").order_by(NodeCommand.node_id)
    if node_id is not None:
        stmt = stmt.where(NodeCommand.node_id == node_id)
    async with stack.runtime.sessions() as session:
        return list((await session.scalars(stmt)).all())


async def rollout_of(stack: Stack, batch_id: str) -> Rollout:
    async with stack.runtime.sessions() as session:
        found = await session.get(Rollout, batch_id)
    assert found is not None
    return found


async def ordered(stack: Stack) -> list[int]:
    return [c.node_id for c in await commands(stack)]


async def test_waves_start_only_when_the_last_is_final_and_the_rollout_completes(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2, n3 = await fleet.start(3)
    batch_id = await fleet.deploy(strategy="rolling", batch_size=2, max_failures=1)
    assert await ordered(stack) == [n1, n2]

    await fleet.report(n1, *SUCCESS)
    await tick(stack)
    assert await ordered(stack) == [n1, n2]  # n2 is still under way
    assert (await rollout_of(stack, batch_id)).current_wave == 1

    await fleet.report(n2, "downloading", "failed")
    await tick(stack)
    await tick(stack)  # a second pass sends nothing twice
    assert await ordered(stack) == [n1, n2, n3]
    assert (await rollout_of(stack, batch_id)).current_wave == 2

    await fleet.report(n3, *SUCCESS)
    await tick(stack)
    done = await rollout_of(stack, batch_id)
    assert (done.status, done.finished_at is not None) == ("completed", True)
    status = await client.get(f"/api/v1/updates/{batch_id}/status", headers=fleet.headers)
    data = status.json()["data"]
    assert (data["status"], data["success"], data["failed"], data["pending"]) == (
        "completed",
        2,
        1,
        0,
    )


async def test_failures_beyond_the_limit_pause_and_resuming_accepts_them(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    batch_id = await fleet.deploy(strategy="rolling", batch_size=1, max_failures=0)
    await fleet.report(n1, "downloading", "failed")

    await tick(stack)

    paused = await rollout_of(stack, batch_id)
    assert paused.status == "paused"
    assert paused.reason == "1 node(s) failed to update, more than the 0 allowed"
    assert await ordered(stack) == [n1]
    resumed = await client.post(f"/api/v1/updates/{batch_id}/resume", headers=fleet.headers)
    assert resumed.status_code == 200, resumed.text
    await tick(stack)
    assert await ordered(stack) == [n1, n2]
    await fleet.report(n2, *SUCCESS)
    await tick(stack)
    assert (await rollout_of(stack, batch_id)).status == "completed"


async def test_the_canary_bakes_and_a_sick_canary_pauses(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2, _ = await fleet.start(3)
    batch_id = await fleet.deploy(strategy="canary", canary_size=1, batch_size=1, bake_seconds=600)
    await fleet.report(n1, *SUCCESS)

    await tick(stack)
    await tick(stack)
    baking = await rollout_of(stack, batch_id)
    assert (baking.current_wave, baking.wave_done_at is not None) == (1, True)
    assert await ordered(stack) == [n1]  # still baking

    async with stack.runtime.engine.begin() as conn:  # the bake time has passed
        await conn.execute(
            sa.update(Rollout).values(wave_done_at=utcnow() - timedelta(seconds=601))
        )
    await tick(stack)
    assert await ordered(stack) == [n1, n2]
    assert (await rollout_of(stack, batch_id)).current_wave == 2


async def test_a_canary_that_goes_offline_after_updating_pauses_the_rollout(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, _, _ = await fleet.start(3)
    batch_id = await fleet.deploy(strategy="canary", canary_size=1, batch_size=1, bake_seconds=600)
    await fleet.report(n1, *SUCCESS)
    await _set_nodes(stack, status="offline")  # the offline check found it silent

    await tick(stack)

    sick = await rollout_of(stack, batch_id)
    assert sick.status == "paused"
    assert sick.reason == "1 canary node(s) went offline after updating"
    assert await ordered(stack) == [n1]


async def test_orders_still_pending_at_the_expiry_fail_and_the_rollout_ends(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    batch_id = await fleet.deploy(strategy="all", max_failures=1, expires_in_seconds=600)
    await fleet.report(n1, *SUCCESS)
    await fleet.report(n2, "downloading")
    await tick(stack)
    assert (await rollout_of(stack, batch_id)).status == "running"  # n2 is under way

    async with stack.runtime.engine.begin() as conn:  # n2 went quiet; the expiry passes
        await conn.execute(
            sa.update(UpdateRecord).where(UpdateRecord.node_id == n2).values(status="pending")
        )
        await conn.execute(sa.update(Rollout).values(expires_at=utcnow() - timedelta(seconds=1)))
    await tick(stack)

    async with stack.runtime.sessions() as session:
        records = {r.node_id: r for r in (await session.scalars(sa.select(UpdateRecord))).all()}
    assert (records[n1].status, records[n1].error_message) == ("success", None)
    assert (records[n2].status, records[n2].error_message) == ("failed", orchestrator.EXPIRED)
    await tick(stack)
    assert (await rollout_of(stack, batch_id)).status == "completed"


async def test_a_replica_acting_on_a_stale_view_sends_no_wave_twice(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    batch_id = await fleet.deploy(strategy="rolling", batch_size=1)
    await fleet.report(n1, *SUCCESS)
    stale = await rollout_of(stack, batch_id)  # read by a replica before another advanced it

    await tick(stack)
    async with transaction(stack.runtime.sessions) as session:
        await orchestrator.advance(session, stack.runtime.command_bus, stale, "http://m", utcnow())

    assert await ordered(stack) == [n1, n2]
    assert (await rollout_of(stack, batch_id)).current_wave == 2


async def test_an_update_whose_node_stops_reporting_fails_as_stuck(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    batch_id = await fleet.deploy(strategy="all", max_failures=1)
    await fleet.report(n1, "downloading", "installing")
    await fleet.report(n2, "downloading")
    await tick(stack)
    assert (await rollout_of(stack, batch_id)).current_wave == 1

    silent = stack.settings.rollout.stuck_after + timedelta(seconds=1)
    async with stack.runtime.engine.begin() as conn:  # n1 went silent that long ago
        await conn.execute(
            sa.update(UpdateRecord)
            .where(UpdateRecord.node_id == n1)
            .values(reported_at=utcnow() - silent, started_at=utcnow() - silent)
        )
    await tick(stack)

    async with stack.runtime.sessions() as session:
        records = {r.node_id: r for r in (await session.scalars(sa.select(UpdateRecord))).all()}
    assert (records[n1].status, records[n1].error_message) == ("failed", STUCK)
    assert records[n2].status == "downloading"  # it reports: still under way
    assert records[n2].reported_at is not None
    await fleet.report(n2, "installing", "verifying", "success")
    await tick(stack)
    assert (await rollout_of(stack, batch_id)).status == "completed"


async def test_a_rollback_orders_the_updated_nodes_back_to_their_earlier_version(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2, _ = await fleet.start(3)
    older = await upload(client, fleet.headers, "1.0.0")  # what the daemons run now
    assert older.status_code == 201, older.text
    batch_id = await fleet.deploy(strategy="rolling", batch_size=2, max_failures=1)
    await fleet.report(n1, *SUCCESS)
    await fleet.report(n2, "downloading", "failed")
    await tick(stack)  # n3's wave starts; n3 stays silent

    response = await client.post(f"/api/v1/updates/{batch_id}/rollback", headers=fleet.headers)

    assert response.status_code == 200, response.text
    result = response.json()["data"]
    assert (result["total_nodes"], result["ineligible"]) == (1, [])
    [back_id] = result["batch_ids"]
    original = await rollout_of(stack, batch_id)
    assert original.status == "cancelled"  # n3's order was withdrawn
    back = await rollout_of(stack, back_id)
    assert (back.rollback_of, back.version, back.status) == (batch_id, "1.0.0", "running")
    [order] = [c for c in await commands(stack, n1) if c.payload["manifest"]["version"] == "1.0.0"]
    assert order.payload["rollback"] is True
    assert order.payload["download_url"].endswith(
        f"/api/v1/versions/{older.json()['data']['id']}/download"
    )
    async with stack.runtime.sessions() as session:
        record = await session.get(UpdateRecord, order.payload["record_id"])
    assert record is not None
    assert (record.batch_id, record.from_version, record.to_version) == (back_id, "2.0.0", "1.0.0")

    again = await client.post(f"/api/v1/updates/{back_id}/rollback", headers=fleet.headers)
    assert (again.status_code, again.json()["code"]) == (400, 3014)  # nothing succeeded yet


async def test_the_next_wave_reaches_a_connected_daemon_at_once(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    daemon = Daemon(wire, fleet.tokens[n2])
    try:
        await daemon.send(command_ack=pb.CommandAck())  # the stream is open once this is acked
        await daemon.next("ack")
        await fleet.deploy(strategy="rolling", batch_size=1)
        await fleet.report(n1, *SUCCESS)

        await tick(stack)

        # Woken by the tick's commit, well before the stream's periodic read of the outbox.
        command = (await daemon.next("command")).command
        [order] = await commands(stack, n2)
        assert (command.id, command.type) == (order.id, "update")
    finally:
        await daemon.close()


async def test_an_agent_canary_whose_agent_stops_pauses_the_rollout(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    for node_id in (n1, n2):
        await add_agent(stack, node_id, version="1.0.0", status="running")
    uploaded = await upload(client, fleet.headers, "2.0.0", component="agent")
    body = {
        "component": "agent",
        "version_id": uploaded.json()["data"]["id"],
        "target_type": "all",
        "strategy": "canary",
        "batch_size": 1,
    }
    started = await client.post("/api/v1/updates/deploy", json=body, headers=fleet.headers)
    batch_id = started.json()["data"]["batch_id"]
    await fleet.report(n1, *SUCCESS)
    async with stack.runtime.engine.begin() as conn:  # reported while the agent restarted
        await conn.execute(sa.update(Agent).where(Agent.node_id == n1).values(status="stopped"))
    await tick(stack)  # the canary wave is done: the watch begins
    await tick(stack)
    assert (await rollout_of(stack, batch_id)).status == "running"  # that report is older

    watch_began = (await rollout_of(stack, batch_id)).wave_done_at
    assert watch_began is not None
    async with stack.runtime.engine.begin() as conn:  # a later report: the agent keeps exiting
        await conn.execute(
            sa.update(Agent)
            .where(Agent.node_id == n1)
            .values(status="error", updated_at=watch_began + timedelta(seconds=1))
        )
    await tick(stack)

    sick = await rollout_of(stack, batch_id)
    assert sick.status == "paused"
    reason = "1 canary node(s) went offline or stopped running the agent after updating"
    assert sick.reason == reason
    assert await ordered(stack) == [n1]


async def test_each_wave_waits_for_offline_nodes_from_its_own_start(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2 = await fleet.start(2)
    batch_id = await fleet.deploy(strategy="rolling", batch_size=1, expires_in_seconds=600)
    await fleet.report(n1, "downloading")
    async with stack.runtime.engine.begin() as conn:  # the first wave outlasts its wait
        await conn.execute(sa.update(Rollout).values(expires_at=utcnow() - timedelta(seconds=1)))
    await tick(stack)
    await fleet.report(n1, "installing", "verifying", "success")

    await tick(stack)

    started = utcnow()
    rollout = await rollout_of(stack, batch_id)
    assert rollout.current_wave == 2
    assert rollout.expires_at >= started + timedelta(seconds=590)
    [order] = await commands(stack, n2)
    assert order.expires_at == rollout.expires_at
    async with stack.runtime.sessions() as session:
        record = await session.get(UpdateRecord, order.payload["record_id"])
    assert record is not None
    assert record.status == "pending"  # not failed with the first wave's expiry


async def test_a_cancel_fails_only_the_orders_no_daemon_was_given(
    stack: Stack, wire: Wire, client: httpx.AsyncClient
) -> None:
    fleet = Fleet(stack, wire, client)
    n1, n2, n3 = await fleet.start(3)
    streams = [Daemon(wire, fleet.tokens[n]) for n in (n1, n2)]  # n3 holds no stream
    try:
        for daemon in streams:
            await daemon.send(command_ack=pb.CommandAck())
            await daemon.next("ack")
        batch_id = await fleet.deploy(strategy="all")
        for daemon in streams:  # both receive their order: it is written to them
            assert (await daemon.next("command")).command.type == "update"
        written = {c.node_id: c.state for c in await commands(stack)}
        assert written == {n1: "sent", n2: "sent", n3: "pending"}

        cancelled = await client.post(f"/api/v1/updates/{batch_id}/cancel", headers=fleet.headers)

        assert cancelled.status_code == 200, cancelled.text
        records = await records_by_node(stack)
        assert (records[n3].status, records[n3].error_message) == ("failed", "cancelled")
        assert (records[n1].status, records[n2].status) == ("pending", "pending")
        await fleet.report(n1, *SUCCESS)  # n1 carried out the order it had received
        assert (await records_by_node(stack))[n1].status == "success"

        # n2 never answers: once its order expires in the outbox, its record fails.
        async with stack.runtime.engine.begin() as conn:
            await conn.execute(
                sa.update(NodeCommand)
                .where(NodeCommand.node_id == n2)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        async with transaction(stack.runtime.sessions) as session:
            await command_repository.expire(session, utcnow())
        await tick(stack)
        records = await records_by_node(stack)
        assert (records[n2].status, records[n2].error_message) == ("failed", orchestrator.EXPIRED)
        assert records[n1].status == "success"
    finally:
        for daemon in streams:
            await daemon.close()


async def records_by_node(stack: Stack) -> dict[int, UpdateRecord]:
    async with stack.runtime.sessions() as session:
        return {r.node_id: r for r in (await session.scalars(sa.select(UpdateRecord))).all()}
