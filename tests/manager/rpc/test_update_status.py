"""What daemons report of their updates: one state table, over Connect and the unary RPC."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from opscaffold.manager.db import transaction
from opscaffold.manager.errors import UpdateRecordNotFound, UpdateTransitionRefused
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import UpdateRecord
from opscaffold.manager.models.release import UPDATE_STATUSES
from opscaffold.manager.rollout import service as rollout_service
from opscaffold.manager.rollout.service import NodeReport, progress_of
from opscaffold.manager.rollout.states import FINAL, STATES, TRANSITIONS, UpdateState, allowed
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer
from tests.manager.rpc.test_commands import Daemon

PAIRS = list(itertools.product(STATES, STATES))


def test_the_table_knows_every_state_the_column_allows() -> None:
    assert set(STATES) == set(UPDATE_STATUSES) == set(TRANSITIONS)
    assert all(not TRANSITIONS[state] for state in FINAL)
    reachable = {target for targets in TRANSITIONS.values() for target in targets}
    assert reachable == set(STATES) - {"pending"}  # nothing goes back to the start


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_every_move_is_allowed_or_forbidden_as_designed(
    current: UpdateState, target: UpdateState
) -> None:
    walk = [
        "pending",
        "downloading",
        "downloading",
        "installing",
        "verifying",
        "success",
    ]
    designed = (current, target) in set(itertools.pairwise(walk)) | {
        ("pending", "failed"),
        ("downloading", "failed"),
        ("installing", "failed"),
        ("verifying", "failed"),
        ("installing", "rollback"),
        ("verifying", "rollback"),
    }
    assert allowed(current, target) == designed


async def add_record(stack: Stack, node_id: int, status: str = "pending") -> int:
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(
            sa.insert(UpdateRecord).values(
                batch_id=str(uuid.uuid4()),
                node_id=node_id,
                component="agent",
                from_version="1.0.0",
                to_version="2.0.0",
                status=status,
                created_by=1,
            )
        )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


async def record(stack: Stack, record_id: int) -> UpdateRecord:
    async with stack.runtime.sessions() as session:
        found = await session.get(UpdateRecord, record_id)
    assert found is not None
    return found


def report(record_id: int, status: str, **fields: Any) -> pb.UpdateStatusReport:
    return pb.UpdateStatusReport(record_id=record_id, status=status, **fields)


async def test_the_database_moves_only_as_the_table_allows(wire: Wire, stack: Stack) -> None:
    registered, _ = await wire.register()
    token = bearer(registered.node_token)
    for current, target in PAIRS:
        if target == "pending":
            continue  # no daemon reports it
        record_id = await add_record(stack, registered.node_id, current)
        call = wire.stub.ReportUpdateStatus(report(record_id, target), metadata=token)
        if allowed(current, target) or current == target:
            assert (await call).success, (current, target)
            assert (await record(stack, record_id)).status == target
        else:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, (current, target)
            assert (await record(stack, record_id)).status == current


async def test_an_update_reported_over_connect_keeps_its_times_progress_and_reason(
    wire: Wire, stack: Stack
) -> None:
    registered, node_uuid = await wire.register()
    good = await add_record(stack, registered.node_id)
    bad = await add_record(stack, registered.node_id)
    daemon = Daemon(wire, registered.node_token)
    steps = [
        report(good, "downloading", progress=40, node_uuid=node_uuid),
        report(good, "installing", progress=100),
        report(good, "verifying"),
        report(good, "success", version="2.0.0"),
        report(good, "success", version="2.0.0"),  # resent: accepted, nothing changes
        report(bad, "downloading", progress=100),
        report(bad, "installing"),
        report(bad, "rollback", error="the agent did not answer /health", version="1.0.0"),
        report(bad, "success"),  # too late: rollback is final
    ]
    try:
        for step in steps:
            last = await daemon.send(update_status=step)
        refused: list[pb.Refusal] = []
        while True:
            ack = (await daemon.next("ack")).ack
            refused.extend(ack.refused)
            if ack.seq == last:
                break
    finally:
        await daemon.close()
    assert [(r.seq, r.code) for r in refused] == [(last, "FAILED_PRECONDITION")]
    done, rolled_back = await record(stack, good), await record(stack, bad)
    assert (done.status, done.progress, done.error_message) == ("success", 100, None)
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.started_at <= done.finished_at
    assert rolled_back.status == "rollback"
    assert rolled_back.error_message == "the agent did not answer /health"
    assert rolled_back.finished_at is not None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"status": "finished"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "pending"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "downloading", "progress": 101}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "downloading", "progress": -1}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "failed", "error": "bad\x00"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "success", "version": "9" * 33}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "downloading", "record_id": 0}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"status": "downloading", "record_id": 2**62}, grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_reports_are_refused_and_change_nothing(
    wire: Wire, stack: Stack, fields: dict[str, Any], code: grpc.StatusCode
) -> None:
    registered, _ = await wire.register()
    record_id = await add_record(stack, registered.node_id)
    request = pb.UpdateStatusReport(**({"record_id": record_id} | fields))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportUpdateStatus(request, metadata=bearer(registered.node_token))
    assert refused.value.code() == code
    assert (await record(stack, record_id)).status == "pending"


async def test_a_node_reports_only_its_own_updates(wire: Wire, stack: Stack) -> None:
    owner, _ = await wire.register()
    other, other_uuid = await wire.register()
    record_id = await add_record(stack, owner.node_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.ReportUpdateStatus(
            report(record_id, "downloading"), metadata=bearer(other.node_token)
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as naming:
        await wire.stub.ReportUpdateStatus(
            report(record_id, "downloading", node_uuid=other_uuid),
            metadata=bearer(owner.node_token),
        )
    assert naming.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await record(stack, record_id)).status == "pending"


async def test_reports_of_many_nodes_at_once_are_each_answered_on_their_own(
    wire: Wire, stack: Stack
) -> None:
    nodes = [(await wire.register())[0] for _ in range(12)]
    records = [await add_record(stack, node.node_id) for node in nodes]
    calls = [
        wire.stub.ReportUpdateStatus(report(record_id, "downloading", progress=25), metadata=token)
        for record_id, token in zip(records, (bearer(n.node_token) for n in nodes), strict=True)
    ]
    forbidden = wire.stub.ReportUpdateStatus(
        report(await add_record(stack, nodes[0].node_id), "success"),
        metadata=bearer(nodes[0].node_token),
    )
    foreign = wire.stub.ReportUpdateStatus(
        report(records[1], "installing"), metadata=bearer(nodes[0].node_token)
    )

    answers = await asyncio.gather(*calls, forbidden, foreign, return_exceptions=True)

    assert all(isinstance(a, pb.ReportUpdateStatusResponse) and a.success for a in answers[:-2])
    refusals = [a.code() for a in answers[-2:] if isinstance(a, grpc.aio.AioRpcError)]
    assert refusals == [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND]
    for record_id in records:
        stored = await record(stack, record_id)
        assert (stored.status, stored.progress) == ("downloading", 25)
        assert stored.started_at is not None


async def test_a_batch_of_reports_is_applied_in_order_with_a_few_statements(
    stack: Stack, wire: Wire
) -> None:
    nodes = [(await wire.register())[0].node_id for _ in range(20)]
    records = {node: await add_record(stack, node) for node in nodes}
    now = utcnow()

    def step(node: int, state: str, progress: int = 0, error: str = "") -> NodeReport:
        return NodeReport(node, progress_of(records[node], state, progress, error, ""))

    reports = [step(n, "downloading") for n in nodes]
    reports += [step(n, "downloading", 50) for n in nodes]
    reports += [step(n, "installing") for n in nodes[:10]]  # two steps further, in order
    reports += [step(nodes[10], "failed", error="the disk is full")]
    reports += [step(nodes[11], "success")]  # downloading → success: refused
    reports += [step(nodes[10], "failed", error="the disk is full")]  # resent: no change
    reports += [NodeReport(nodes[13], progress_of(records[nodes[14]], "installing", 0, "", ""))]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    async with transaction(stack.runtime.sessions) as session:
        # This transaction's statements only: the app's jobs use the engine meanwhile.
        connection = (await session.connection()).sync_connection
        assert connection is not None
        sa.event.listen(connection, "before_cursor_execute", seen)
        try:
            outcomes = await rollout_service.record_progress(session, reports, now)
        finally:
            sa.event.remove(connection, "before_cursor_execute", seen)

    assert outcomes[:-3] == [True] * (len(reports) - 3)
    assert isinstance(outcomes[-3], UpdateTransitionRefused)
    assert outcomes[-2] is False
    assert isinstance(outcomes[-1], UpdateRecordNotFound)
    # One locking read; one UPDATE per kind of move (pending → installing, → downloading at
    # 50 %, → failed with its reason), not one per report.
    assert statements.count("SELECT") == 1
    assert statements.count("UPDATE") == 3
    states = {node: await record(stack, records[node]) for node in nodes}
    assert {states[n].status for n in nodes[:10]} == {"installing"}
    assert {(states[n].status, states[n].progress) for n in nodes[11:]} == {("downloading", 50)}
    failed = states[nodes[10]]
    assert (failed.status, failed.error_message) == ("failed", "the disk is full")
    assert all(states[n].started_at == now for n in nodes)
