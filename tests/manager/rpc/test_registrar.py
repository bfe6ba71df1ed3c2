"""Register in batches: each caller gets the answer it would get if the calls came one by one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from opscaffold.manager.db import transaction
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate
from opscaffold.manager.errors import IngestBusy, InvalidArgument
from opscaffold.manager.models import EnrollmentToken, Node, NodeCredential, NodeEvent, NodeLabel
from opscaffold.manager.rpc import convert
from opscaffold.manager.rpc.identity import Caller
from opscaffold.manager.rpc.registrar import Registrar
from opscaffold.manager.rpc.server import effective_configs_of
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer, registration

BAD_TOKEN = "ose_not-a-real-token-at-all-xxxxxxxx"
# Generous: a batch is written as soon as it is full, so a test waits this long only when
# its calls did not land in one batch, and then fails on its own timeout first.
HOLD_S = 30.0
CALLS_TIMEOUT_S = 15.0


def _registrar(wire: Wire, **limits: Any) -> Registrar:
    channel = wire.service.channel
    return Registrar(
        channel.runtime.sessions,
        channel.identities,
        effective_configs_of(channel.settings),
        **limits,
    )


@contextlib.asynccontextmanager
async def one_batch(wire: Wire, size: int) -> AsyncIterator[None]:
    """Registrations in this block go through a registrar that writes a batch only once it
    holds `size` of them: calls that all succeed in time were decided in one batch."""
    registrar = _registrar(wire, max_batch=size, max_delay=HOLD_S)
    registrar.start()
    channel = wire.service.channel
    previous, channel.registrar = channel.registrar, registrar
    try:
        yield
    finally:
        channel.registrar = previous
        await registrar.stop()


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Run calls concurrently; each result is its answer or the error it was refused with."""
    async with asyncio.timeout(CALLS_TIMEOUT_S):
        return await asyncio.gather(*calls, return_exceptions=True)


def _code(answer: object) -> grpc.StatusCode:
    if isinstance(answer, grpc.aio.AioRpcError):
        return answer.code()
    assert isinstance(answer, pb.RegisterResponse), answer
    return grpc.StatusCode.OK


async def _count(stack: Stack, model: type[Any], *where: Any) -> int:
    stmt = sa.select(sa.func.count()).select_from(model).where(*where)
    async with stack.runtime.sessions() as session:
        return int(await session.scalar(stmt) or 0)


async def _uses(stack: Stack, token_id: int) -> int:
    async with stack.runtime.sessions() as session:
        return int(
            await session.scalar(
                sa.select(EnrollmentToken.uses).where(EnrollmentToken.id == token_id)
            )
            or 0
        )


async def _works(wire: Wire, node_uuid: str, node_token: str) -> bool:
    """Whether the token lets its node heartbeat (it is refused UNAUTHENTICATED otherwise)."""
    heartbeat = pb.HeartbeatRequest(node_uuid=node_uuid)
    answer = await _all(wire.stub.Heartbeat(heartbeat, metadata=bearer(node_token)))
    if isinstance(answer[0], grpc.aio.AioRpcError):
        assert answer[0].code() == grpc.StatusCode.UNAUTHENTICATED
        return False
    return True


def _refused(stack: Stack, reason: str) -> float:
    sample = stack.runtime.metrics.registry.get_sample_value(
        "manager_grpc_refused_total", {"reason": reason}
    )
    return sample or 0.0


async def _token(stack: Stack, **fields: Any) -> enrollment_service.Created:
    async with transaction(stack.runtime.sessions) as session:
        data = EnrollmentTokenCreate(name="batch", **fields)
        return await enrollment_service.create(session, data, None)


async def test_concurrent_enrollments_each_get_their_own_working_token(
    wire: Wire, stack: Stack
) -> None:
    uuids = [str(uuid.uuid4()) for _ in range(60)]
    answers = await _all(*(wire.register(node_uuid) for node_uuid in uuids))
    assert [a for a in answers if isinstance(a, BaseException)] == []
    responses = [response for response, _ in answers]
    assert len({r.node_id for r in responses}) == len(uuids)
    assert len({r.node_token for r in responses}) == len(uuids)
    for response, node_uuid in answers:
        assert await _works(wire, node_uuid, response.node_token)
    assert await _count(stack, Node) == len(uuids)
    assert await _count(stack, NodeLabel) == len(uuids)
    assert await _count(stack, NodeEvent, NodeEvent.event == "registered") == len(uuids)
    assert await _count(stack, NodeCredential) == len(uuids)


async def test_one_batch_of_new_nodes_answers_each_with_its_token(wire: Wire) -> None:
    uuids = [str(uuid.uuid4()) for _ in range(8)]
    async with one_batch(wire, len(uuids)):
        calls = [
            wire.stub.Register(registration(u), metadata=bearer(wire.enrollment_token))
            for u in uuids
        ]
        responses = await _all(*calls)
    assert [_code(r) for r in responses] == [grpc.StatusCode.OK] * len(uuids)
    for call, response, node_uuid in zip(calls, responses, uuids, strict=True):
        metadata = dict(await call.initial_metadata())
        assert metadata["x-ops-node-token"] == response.node_token
        assert response.heartbeat_interval == 30
        assert await _works(wire, node_uuid, response.node_token)


async def test_a_mixed_batch_answers_each_caller_alone(wire: Wire, stack: Stack) -> None:
    heard, heard_uuid = await wire.register()
    assert await _works(wire, heard_uuid, heard.node_token)  # now it may not enroll again
    mine, mine_uuid = await wire.register()
    reasons = ["uuid_taken", "bad_enrollment", "other_node", "no_token"]
    before = {reason: _refused(stack, reason) for reason in reasons}
    enroll = bearer(wire.enrollment_token)
    new = [str(uuid.uuid4()) for _ in range(4)]
    requests = [
        (registration(new[0]), enroll, grpc.StatusCode.OK),
        (registration(heard_uuid), enroll, grpc.StatusCode.PERMISSION_DENIED),
        (registration(new[1]), bearer(BAD_TOKEN), grpc.StatusCode.UNAUTHENTICATED),
        (registration(new[2]), bearer(mine.node_token), grpc.StatusCode.PERMISSION_DENIED),
        (registration(mine_uuid, hostname="renamed"), bearer(mine.node_token), grpc.StatusCode.OK),
        (registration(new[3]), (), grpc.StatusCode.UNAUTHENTICATED),
    ]
    async with one_batch(wire, len(requests)):
        answers = await _all(*(wire.stub.Register(r, metadata=m) for r, m, _ in requests))
    assert [_code(a) for a in answers] == [expected for _, _, expected in requests]
    assert answers[0].node_token
    assert await _works(wire, new[0], answers[0].node_token)
    assert (answers[4].node_id, answers[4].node_token) == (mine.node_id, "")
    assert await _works(wire, mine_uuid, mine.node_token)
    assert {
        reason: _refused(stack, reason) - before[reason] for reason in reasons
    } == dict.fromkeys(reasons, 1.0)
    async with stack.runtime.sessions() as session:
        stored = dict((await session.execute(sa.select(Node.uuid, Node.hostname))).all())
    assert set(stored) == {heard_uuid, mine_uuid, new[0]}
    assert stored[mine_uuid] == "renamed"


async def test_a_token_with_three_uses_left_enrolls_three_of_five(wire: Wire, stack: Stack) -> None:
    token = await _token(stack, max_uses=3)
    uuids = [str(uuid.uuid4()) for _ in range(5)]
    async with one_batch(wire, len(uuids)):
        answers = await _all(
            *(wire.stub.Register(registration(u), metadata=bearer(token.token)) for u in uuids)
        )
    codes = sorted(_code(a).name for a in answers)
    assert codes == ["OK"] * 3 + ["UNAUTHENTICATED"] * 2
    assert await _uses(stack, token.row.id) == 3
    assert await _count(stack, Node) == 3
    with pytest.raises(grpc.aio.AioRpcError) as used_up:
        await wire.stub.Register(registration(str(uuid.uuid4())), metadata=bearer(token.token))
    assert used_up.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_two_enrollments_of_one_uuid_behave_as_one_after_the_other(
    wire: Wire, stack: Stack
) -> None:
    """One after the other, the second finds the node never heard from (its first answer
    looks lost) and enrolls it again with a new token: one node, the later token works."""
    node_uuid = str(uuid.uuid4())
    enroll = bearer(wire.enrollment_token)
    async with one_batch(wire, 2):
        first, second = await _all(
            *(wire.stub.Register(registration(node_uuid), metadata=enroll) for _ in range(2))
        )
    assert first.node_id == second.node_id
    assert "" != first.node_token != second.node_token != ""
    working = [await _works(wire, node_uuid, r.node_token) for r in (first, second)]
    assert sorted(working) == [False, True]
    assert await _count(stack, Node) == 1
    assert await _count(stack, NodeEvent, NodeEvent.event == "registered") == 1
    assert await _count(stack, NodeCredential) == 1


async def test_two_refreshes_of_one_node_behave_as_one_after_the_other(
    wire: Wire, stack: Stack
) -> None:
    registered, node_uuid = await wire.register()
    own = bearer(registered.node_token)
    names = ["first-name", "second-name"]
    async with one_batch(wire, 2):
        answers = await _all(
            *(wire.stub.Register(registration(node_uuid, hostname=n), metadata=own) for n in names)
        )
    assert [(a.node_id, a.node_token) for a in answers] == [(registered.node_id, "")] * 2
    async with stack.runtime.sessions() as session:
        assert await session.scalar(sa.select(Node.hostname)) in names
    assert await _works(wire, node_uuid, registered.node_token)


async def test_a_full_queue_answers_resource_exhausted(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire.service.channel.registrar._batches, "_max_queue", 0)
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await wire.register()
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_stop_registers_what_is_queued_and_then_turns_callers_away(
    wire: Wire, stack: Stack
) -> None:
    registrar = _registrar(wire, max_delay=HOLD_S)
    registrar.start()
    caller = Caller(wire.enrollment_token, None, "127.0.0.1")

    def submit() -> asyncio.Future[Any]:
        request = registration(str(uuid.uuid4()))
        values = convert.registration(request, caller.peer_ip)
        return registrar.submit(caller, values, convert.labels_of(request))

    queued = [submit() for _ in range(3)]
    async with asyncio.timeout(CALLS_TIMEOUT_S):
        await registrar.stop()  # long before the window closes
    assert all(future.done() for future in queued)
    assert len({future.result().node_id for future in queued}) == 3
    assert await _count(stack, Node) == 3
    with pytest.raises(IngestBusy):
        submit()


async def test_a_registration_the_database_refuses_fails_alone(wire: Wire, stack: Stack) -> None:
    caller = Caller(wire.enrollment_token, None, "127.0.0.1")
    request = registration(str(uuid.uuid4()))
    values = convert.registration(request, caller.peer_ip)
    # Passed no validation: PostgreSQL refuses the NUL, the others the missing hostname.
    values["hostname"] = "web\x00-01" if stack.backend == "postgres" else None
    async with one_batch(wire, 5):
        bad = wire.service.channel.registrar.submit(caller, values, {})
        answers = await _all(*(wire.register() for _ in range(4)))
        with pytest.raises(InvalidArgument):
            await bad
    assert all(isinstance(answer, tuple) for answer in answers), answers
    for response, node_uuid in answers:
        assert await _works(wire, node_uuid, response.node_token)
    assert await _count(stack, Node) == 4
