"""A virtual node's update orders, without a Manager: what it refuses, and how often it
carries out one record."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from opscaffold.daemon.commands import CommandError
from opscaffold.daemon.session import Identity, NodeSession, SessionSettings
from opscaffold.fleet.nodes import VirtualNode
from opscaffold.fleet.updates import UpdateBehaviour
from opscaffold.protocol.manifest import Manifest, generate_key, timestamp
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.daemon.packages import order_for
from tests.helpers import wait_until


def manifest(component: str, version: str) -> Manifest:
    """A package's manifest; no virtual node downloads it, so no package exists."""
    return Manifest(
        component=component,
        version=version,
        os="linux",
        arch="amd64",
        size=1000,
        sha256="0" * 64,
        created_at=timestamp(datetime.now(UTC)),
    )


def node(behaviour: UpdateBehaviour | None = None) -> VirtualNode:
    identity = Identity(str(uuid.uuid4()))
    updates = behaviour or UpdateBehaviour(seconds=0)
    virtual = VirtualNode(0, identity, lambda _: None, updates=updates)
    stub: object = None  # never called: the test drives the node, not the session
    virtual.session = NodeSession(stub, virtual, identity, SessionSettings())  # type: ignore[arg-type]
    return virtual


def command(payload: bytes) -> pb.Command:
    return pb.Command(id=str(uuid.uuid4()), type="update", payload=payload)


async def test_an_order_that_is_not_valid_is_refused_naming_the_field() -> None:
    virtual = node()
    with pytest.raises(CommandError, match=r"not valid: record_id: .*manifest: Field required"):
        await virtual.on_command(command(b'{"record_id": 0}'))
    with pytest.raises(CommandError, match="not valid: payload: Invalid JSON"):
        await virtual.on_command(command(b"not json"))
    assert virtual.session is not None
    assert virtual.session.outbox.pending_updates() == []


async def test_a_record_is_carried_out_once_whatever_carries_it() -> None:
    virtual = node()
    order = order_for(manifest("agent", "9.0.0"), generate_key(), "https://x/p.tar.gz", 5)
    payload = order.model_dump_json().encode()
    await virtual.on_command(command(payload))
    assert virtual.versions["agent"] == "9.0.0"
    assert virtual.session is not None
    walk = [u.status for u in virtual.session.outbox.pending_updates()]
    assert walk == ["downloading", "installing", "verifying", "success"]  # progress coalesced

    await virtual.on_command(command(payload))  # a second install would be refused
    again = virtual.session.outbox.pending_updates()[len(walk) :]
    assert [(u.status, u.version) for u in again] == [("success", "9.0.0")]


async def test_an_order_outlives_the_session_that_took_it() -> None:
    """Churn ends a session mid-update, as if the connection dropped: the order goes on and
    its result is queued for the next session."""
    virtual = node(UpdateBehaviour(seconds=0.4))
    order = order_for(manifest("agent", "9.0.0"), generate_key(), "https://x/p.tar.gz", 6)
    update = command(order.model_dump_json().encode())
    taken = asyncio.create_task(virtual.on_command(update))
    assert virtual.session is not None
    outbox = virtual.session.outbox
    await wait_until(outbox.pending_updates, what="the download starts")
    taken.cancel()
    await asyncio.gather(taken, return_exceptions=True)

    results = await wait_until(outbox.pending_results, what="the result is queued")
    assert [(r.command_id, r.ok) for r in results] == [(update.id, True)]
    assert outbox.pending_updates()[-1].status == "success"
    assert virtual.versions["agent"] == "9.0.0"
