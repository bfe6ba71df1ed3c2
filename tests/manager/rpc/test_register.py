"""Register: enrollment, node tokens, idempotence, and refusals at the edge."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from opscaffold.manager.models import AuditLog, Node, NodeCredential, NodeEvent, NodeLabel
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer, registration


async def _scalar(stack: Stack, stmt: sa.Select) -> object:  # type: ignore[type-arg]
    async with stack.runtime.sessions() as session:
        return await session.scalar(stmt)


async def test_enrollment_returns_a_node_token_in_body_and_metadata(
    wire: Wire, stack: Stack
) -> None:
    node_uuid = str(uuid.uuid4())
    call = wire.stub.Register(registration(node_uuid), metadata=bearer(wire.enrollment_token))
    response = await call
    metadata = dict(await call.initial_metadata())
    assert response.node_token.startswith("osn_")
    assert metadata["x-ops-node-token"] == response.node_token
    assert response.heartbeat_interval == 30
    assert response.metric_interval == 60
    async with stack.runtime.sessions() as session:
        node = await session.get(Node, response.node_id)
        assert node is not None
        assert node.uuid == node_uuid
        assert node.status == "unknown"
        assert node.ip == "10.0.0.5"
        assert node.peer_ip == "127.0.0.1"
        assert node.labels == {"env": "prod"}
        labels = (await session.execute(sa.select(NodeLabel.key, NodeLabel.value))).all()
        assert [tuple(r) for r in labels] == [("env", "prod")]
        events = (await session.scalars(sa.select(NodeEvent.event))).all()
        assert events == ["registered"]
        stored = await session.scalar(sa.select(NodeCredential.token_hash))
        assert stored != response.node_token  # only the digest is kept


async def test_register_again_with_the_node_token_is_idempotent(wire: Wire, stack: Stack) -> None:
    first, node_uuid = await wire.register()
    again = await wire.stub.Register(
        registration(node_uuid, hostname="renamed", daemon_version="1.1.0"),
        metadata=bearer(first.node_token),
    )
    assert again.node_id == first.node_id
    assert again.node_token == ""  # the daemon keeps the token it has
    assert await _scalar(stack, sa.select(sa.func.count()).select_from(Node)) == 1
    assert await _scalar(stack, sa.select(Node.hostname)) == "renamed"


async def test_another_caller_cannot_claim_an_existing_uuid(wire: Wire) -> None:
    first, node_uuid = await wire.register()
    await wire.stub.Heartbeat(
        pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(first.node_token)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(registration(node_uuid), metadata=bearer(wire.enrollment_token))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_lost_first_answer_can_be_retried(wire: Wire) -> None:
    """The daemon timed out waiting for its token, yet the node was created: enrolling again
    (before the node was ever heard from, with the key it enrolled with) gives the same node
    a new token."""
    first, node_uuid = await wire.register()
    again = await wire.stub.Register(
        registration(node_uuid), metadata=bearer(wire.enrollment_token)
    )
    assert again.node_id == first.node_id
    assert again.node_token not in ("", first.node_token)
    with pytest.raises(grpc.aio.AioRpcError) as old:
        await wire.stub.Heartbeat(
            pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(first.node_token)
        )
    assert old.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await wire.stub.Heartbeat(
        pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(again.node_token)
    )


@pytest.mark.parametrize("key", ["", "a-stranger-who-read-the-uuid-in-the-ui"])
async def test_a_fresh_node_cannot_be_taken_over_with_the_enrollment_token(
    wire: Wire, key: str
) -> None:
    """Before its first heartbeat, only the daemon that enrolled a uuid may enroll it again;
    anyone else with the enrollment token (and the uuid, which viewers see) is refused, and
    the node keeps its token."""
    first, node_uuid = await wire.register()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(
            registration(node_uuid, enrollment_key=key), metadata=bearer(wire.enrollment_token)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await wire.stub.Heartbeat(
        pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(first.node_token)
    )


async def test_a_node_enrolled_without_a_key_cannot_be_enrolled_again(wire: Wire) -> None:
    """A daemon built from the design's proto alone enrolls; with no key to tell it from a
    stranger, its uuid is not handed out again."""
    first, node_uuid = await wire.register(enrollment_key="")
    assert first.node_token
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(
            registration(node_uuid, enrollment_key=""), metadata=bearer(wire.enrollment_token)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_node_token_cannot_register_another_uuid(wire: Wire) -> None:
    first, _ = await wire.register()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(registration(str(uuid.uuid4())), metadata=bearer(first.node_token))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "metadata", [(), bearer("ose_not-a-real-token-at-all-xxxxxxxx"), bearer("")]
)
async def test_missing_or_invalid_credentials_are_unauthenticated(
    wire: Wire, stack: Stack, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(registration(str(uuid.uuid4())), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Heartbeat(pb.HeartbeatRequest(), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    audit = await _scalar(
        stack, sa.select(AuditLog.occurrences).where(AuditLog.action == "node.auth")
    )
    assert audit == 2  # refusals from one source fold into one row per minute


async def test_refusals_are_counted(wire: Wire, stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await wire.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer("osn_wrong"))
    sample = stack.runtime.metrics.registry.get_sample_value(
        "manager_grpc_refused_total", {"reason": "bad_token"}
    )
    assert sample is not None
    assert sample >= 1


async def test_enrollment_token_limits(wire: Wire, stack: Stack) -> None:
    from opscaffold.manager.db import transaction
    from opscaffold.manager.enrollment import service
    from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate

    async with transaction(stack.runtime.sessions) as session:
        once = await service.create(session, EnrollmentTokenCreate(name="once", max_uses=1), None)
    await wire.stub.Register(registration(str(uuid.uuid4())), metadata=bearer(once.token))
    with pytest.raises(grpc.aio.AioRpcError) as used_up:
        await wire.stub.Register(registration(str(uuid.uuid4())), metadata=bearer(once.token))
    assert used_up.value.code() == grpc.StatusCode.UNAUTHENTICATED

    async with transaction(stack.runtime.sessions) as session:
        await service.revoke(session, once.row.id)
        revoked = await service.create(session, EnrollmentTokenCreate(name="gone"), None)
        await service.revoke(session, revoked.row.id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(registration(str(uuid.uuid4())), metadata=bearer(revoked.token))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uuid", "not-a-uuid"),
        ("hostname", ""),
        ("port", 70000),
        ("ip", "300.1.1.1"),
        ("hostname", "h" * 129),
        ("enrollment_key", "too-short"),
        ("hostname", "web\x00-01"),  # PostgreSQL cannot store NUL
        ("os", "linux\x00"),
        ("kernel_version", "\x00"),
        ("labels", {"env": "prod\x00"}),
        ("labels", {"e\x00nv": "prod"}),
    ],
)
async def test_invalid_registration_is_invalid_argument(
    wire: Wire, field: str, value: object
) -> None:
    request = registration(str(uuid.uuid4()), **{field: value})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Register(request, metadata=bearer(wire.enrollment_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")


async def test_deleted_node_token_is_refused_and_does_not_come_back(
    wire: Wire, stack: Stack
) -> None:
    first, node_uuid = await wire.register()
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.delete(Node).where(Node.id == first.node_id))
    wire.service.channel.identities.forget()  # the cache would let it through for 2 s at most
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await wire.stub.Heartbeat(
            pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(first.node_token)
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await wire.stub.Register(registration(node_uuid), metadata=bearer(first.node_token))
    assert again.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_stored_config_value_out_of_range_falls_back_at_register(
    wire: Wire, stack: Stack
) -> None:
    from opscaffold.manager.db import transaction
    from opscaffold.manager.kit.clock import utcnow
    from opscaffold.manager.node import repository

    first, node_uuid = await wire.register()
    # As written before values were checked: the PUT refuses these now.
    bad = {"heartbeat_interval": "-1", "metric_interval": "45"}
    async with transaction(stack.runtime.sessions) as session:
        await repository.set_config(
            session, "node", first.node_id, bad, updated_by=None, now=utcnow()
        )
    again = await wire.stub.Register(registration(node_uuid), metadata=bearer(first.node_token))
    assert (again.heartbeat_interval, again.metric_interval) == (30, 45)
    config = await wire.stub.GetConfig(
        pb.GetConfigRequest(node_uuid=node_uuid), metadata=bearer(first.node_token)
    )
    assert (config.config["heartbeat_interval"], config.config["metric_interval"]) == ("30", "45")


async def test_each_refusal_answers_counts_and_audits_as_its_class_says(
    wire: Wire, stack: Stack
) -> None:
    first, node_uuid = await wire.register()
    stranger = registration(node_uuid, enrollment_key="a key the daemon that enrolled it never had")
    # (call, status, error code, reason)
    refusals: list[tuple[Callable[[], Awaitable[Any]], grpc.StatusCode, int, str]] = [
        (
            lambda: wire.stub.Register(
                registration(str(uuid.uuid4())), metadata=bearer(first.node_token)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            1003,
            "other_node",
        ),
        (
            lambda: wire.stub.Register(stranger, metadata=bearer(wire.enrollment_token)),
            grpc.StatusCode.PERMISSION_DENIED,
            1003,
            "uuid_taken",
        ),
        (
            lambda: wire.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer("osn_wrong")),
            grpc.StatusCode.UNAUTHENTICATED,
            1002,
            "bad_token",
        ),
    ]
    answered: dict[int, list[str]] = {}
    for call, status, code, reason in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()
        assert refused.value.code() == status, reason
        answered.setdefault(code, []).append(f"{code}: {refused.value.details()}")
        sample = stack.runtime.metrics.registry.get_sample_value(
            "manager_grpc_refused_total", {"reason": reason}
        )
        assert sample is not None, reason
        assert sample >= 1, reason
    async with stack.runtime.sessions() as session:
        rows = await session.execute(
            sa.select(AuditLog.error_message, AuditLog.occurrences).where(
                AuditLog.action == "node.auth"
            )
        )
        # Refusals fold per source, code and minute; each row keeps its first message.
        audited = {message: occurrences for message, occurrences in rows}
    assert audited == {messages[0]: len(messages) for messages in answered.values()}
