"""Commands for daemons: one outbox, delivered at least once over whatever the daemon holds.

`send` is the only way in. Delivery (the Connect stream, SubscribeUpdates, or the heartbeat
response as the fallback) lives with the RPC layer and calls `take_for_delivery` / `settle`.
The states a command goes through are in states.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.command import repository
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.command.states import CommandState
from opscaffold.manager.db import after_commit
from opscaffold.manager.errors import InvalidArgument, NodeNotFound
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import NodeCommand

COMMAND_TYPES = frozenset({"update", "restart", "config", "ping", "task", "task_cancel"})
MAX_TTL = timedelta(days=7)
# A command written to a Connect stream and not acknowledged by then is sent again.
REDELIVER_AFTER = timedelta(seconds=30)
BATCH = 100
MAX_ERROR = 1000  # characters of a daemon's reason kept
Payload = Mapping[str, Any] | Callable[[int], Mapping[str, Any]]


async def send(
    session: AsyncSession,
    bus: CommandBus,
    node_ids: Sequence[int],
    type: str,  # the design's name for it (Command.type)
    payload: Payload,
    ttl: timedelta,
    *,
    created_by: int | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Queue one command per node in the caller's transaction; `bus` wakes the streams that
    hold these nodes once it is committed.

    `payload` may be a function of the node id, so each node can get its own (e.g. its
    effective configuration). `now` is the caller's clock, when its own deadlines must match
    the commands' to the second. Returns the command ids, in the order of `node_ids`.
    """
    if type not in COMMAND_TYPES:
        raise InvalidArgument(f"unknown command type '{type}'")
    if not timedelta(0) < ttl <= MAX_TTL:
        raise InvalidArgument(f"ttl must be between 1 second and {MAX_TTL.days} days")
    ids = list(dict.fromkeys(node_ids))
    known = set(await repository.existing_node_ids(session, ids)) if ids else set()
    if missing := [i for i in ids if i not in known]:
        raise NodeNotFound(f"no such node: {', '.join(map(str, missing[:10]))}")
    now = now or utcnow()
    command_ids = [str(uuid.uuid4()) for _ in ids]
    rows = [
        {
            "id": command_id,
            "node_id": node_id,
            "type": type,
            "payload": dict(payload(node_id) if callable(payload) else payload),
            "state": "pending",
            "created_at": now,
            "expires_at": now + ttl,
            "created_by": created_by,
        }
        for node_id, command_id in zip(ids, command_ids, strict=True)
    ]
    await repository.insert(session, rows)
    if ids:
        after_commit(session, lambda: bus.notify(ids))
    return command_ids


async def take_for_delivery(
    session: AsyncSession, node_id: int, *, reports_back: bool, via: str
) -> Sequence[NodeCommand]:
    """Commands to write to a node now, marked as delivered in the same transaction.

    To a daemon that reports back (Connect, or heartbeats that carry results) they become
    `sent` and come back after REDELIVER_AFTER until the daemon says how they ended; over a
    channel that cannot (SubscribeUpdates, a heartbeat of the design's proto) this one
    delivery is final.
    """
    now = utcnow()
    resend_before = now - REDELIVER_AFTER if reports_back else None
    commands = await repository.deliverable(session, node_id, now, resend_before, BATCH)
    state: CommandState = "sent" if reports_back else "done"
    await repository.mark(session, [c.id for c in commands], state=state, now=now, via=via)
    return commands


async def nodes_with_pending(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Nodes with commands to hand out, including ones due to be delivered again."""
    now = utcnow()
    async with sessions() as session:
        return await repository.nodes_with_pending(session, now, now - REDELIVER_AFTER)


async def settle(session: AsyncSession, node_id: int, outcomes: Mapping[str, str | None]) -> int:
    """Record what a node reports of its commands: id → None (done) or the reason it failed.
    Reports about commands already settled, or about other nodes' commands, change nothing."""
    trimmed = {
        command_id: None if error is None else error[:MAX_ERROR] or "failed"
        for command_id, error in outcomes.items()
    }
    return await repository.settle(session, node_id, trimmed, utcnow())


async def expire_due(session: AsyncSession, now: datetime | None = None) -> int:
    return await repository.expire(session, now or utcnow())
