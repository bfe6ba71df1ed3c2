"""What becomes of a node's status: the state table, and the same table walked in the
database by what moves a node (a heartbeat over gRPC, the offline job)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime

import pytest
import sqlalchemy as sa

from opscaffold.manager.db import transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Node, NodeEvent
from opscaffold.manager.models.node import NODE_STATUSES
from opscaffold.manager.node.jobs import detect_offline
from opscaffold.manager.node.states import (
    INITIAL,
    STATES,
    TRANSITIONS,
    NodeStatus,
    allowed,
    sources,
)
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire, bearer

LONG_AGO = datetime(2020, 1, 1)

# ---- the table ---------------------------------------------------------------------------


def test_the_table_knows_every_state_the_column_allows() -> None:
    assert set(STATES) == set(NODE_STATUSES) == set(TRANSITIONS)
    assert INITIAL == "unknown"
    assert sources(INITIAL) == ()  # nothing ever goes back to unknown


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATES, STATES)))
def test_every_transition_is_allowed_or_forbidden_as_designed(
    current: NodeStatus, target: NodeStatus
) -> None:
    expected = {
        ("unknown", "online"),
        ("unknown", "offline"),
        ("online", "online"),  # heard from again
        ("online", "offline"),
        ("offline", "online"),
    }
    assert allowed(current, target) is ((current, target) in expected)
    assert (current in sources(target)) is ((current, target) in expected)


# ---- the same table, as heartbeats and the offline job apply it ----------------------------

Move = Callable[[Wire, Stack, str, str], Awaitable[None]]


async def _heartbeat(wire: Wire, stack: Stack, node_uuid: str, token: str) -> None:
    await wire.stub.Heartbeat(pb.HeartbeatRequest(node_uuid=node_uuid), metadata=bearer(token))


async def _offline_check(wire: Wire, stack: Stack, node_uuid: str, token: str) -> None:
    async with transaction(stack.runtime.sessions) as session:
        await detect_offline(session, stack.settings, utcnow())


MOVES: dict[NodeStatus, Move] = {"online": _heartbeat, "offline": _offline_check}


async def _status_and_events(stack: Stack, node_id: int) -> tuple[str, list[tuple[str, str]]]:
    async with stack.runtime.sessions() as session:
        node = await session.get(Node, node_id)
        assert node is not None
        rows = await session.execute(
            sa.select(NodeEvent.from_status, NodeEvent.to_status)
            .where(NodeEvent.node_id == node_id, NodeEvent.event != "registered")
            .order_by(NodeEvent.id)
        )
        return node.status, [(str(f), str(t)) for f, t in rows]


async def test_nodes_move_only_as_the_table_allows(wire: Wire, stack: Stack) -> None:
    assert set(MOVES) == set(STATES) - {INITIAL}  # every state a node can be moved to
    for current, target in itertools.product(STATES, MOVES):
        registered, node_uuid = await wire.register()
        node_id = registered.node_id
        # Silent since long ago: whatever its status, its heartbeat deadline has passed.
        async with stack.runtime.engine.begin() as conn:
            await conn.execute(
                sa.update(Node)
                .where(Node.id == node_id)
                .values(status=current, last_heartbeat=LONG_AGO, created_at=LONG_AGO)
            )
        await MOVES[target](wire, stack, node_uuid, registered.node_token)
        status, events = await _status_and_events(stack, node_id)
        assert status == (target if allowed(current, target) else current), (current, target)
        # A transition is recorded when the status changes, and only then.
        changed = allowed(current, target) and current != target
        assert events == ([(current, target)] if changed else []), (current, target)
