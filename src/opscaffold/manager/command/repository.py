"""SQL for the command outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command.states import CommandState, sources
from opscaffold.manager.models import Node, NodeCommand

CHUNK = 5000  # ids per IN list: drivers cap the parameters of one statement (32767)


async def existing_node_ids(session: AsyncSession, node_ids: Sequence[int]) -> list[int]:
    found: list[int] = []
    for start in range(0, len(node_ids), CHUNK):
        part = node_ids[start : start + CHUNK]
        found += await session.scalars(sa.select(Node.id).where(Node.id.in_(part)))
    return found


async def insert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK // 5):
        await session.execute(sa.insert(NodeCommand), list(rows[start : start + CHUNK // 5]))


async def deliverable(
    session: AsyncSession, node_id: int, now: datetime, resend_before: datetime | None, limit: int
) -> Sequence[NodeCommand]:
    """Pending commands of a node, oldest first; with `resend_before`, also those sent before
    then and still not acknowledged (at-least-once redelivery)."""
    due = NodeCommand.state == "pending"
    if resend_before is not None:
        due = sa.or_(due, sa.and_(NodeCommand.state == "sent", NodeCommand.sent_at < resend_before))
    stmt = (
        sa.select(NodeCommand)
        .where(NodeCommand.node_id == node_id, due, NodeCommand.expires_at > now)
        .order_by(NodeCommand.created_at, NodeCommand.id)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def mark(
    session: AsyncSession, ids: Sequence[str], *, state: CommandState, now: datetime, via: str
) -> None:
    """Record a delivery: `sent` awaits the daemon's outcome, `done` is final."""
    if not ids:
        return
    values: dict[str, Any] = {
        "state": state,
        "sent_at": now,
        "attempts": NodeCommand.attempts + 1,
        "delivered_via": via,
    }
    if state == "done":
        values["done_at"] = now
    await session.execute(
        sa.update(NodeCommand)
        .where(NodeCommand.id.in_(ids), NodeCommand.state.in_(sources(state)))
        .values(**values)
    )


async def settle(
    session: AsyncSession, node_id: int, outcomes: Mapping[str, str | None], now: datetime
) -> int:
    """Record what a node says became of its commands (id → None if done, else the reason).
    A node settles only its own commands, and only those still waiting for an outcome."""
    settled = 0
    done = [command_id for command_id, error in outcomes.items() if error is None]
    if done:
        settled += await _finish(session, node_id, done, "done", {"done_at": now})
    failures: dict[str, list[str]] = {}
    for command_id, error in outcomes.items():
        if error is not None:
            failures.setdefault(error, []).append(command_id)
    for error, ids in failures.items():  # one UPDATE per distinct reason
        values = {"done_at": now, "error": error}
        settled += await _finish(session, node_id, ids, "failed", values)
    return settled


async def _finish(
    session: AsyncSession,
    node_id: int,
    ids: Sequence[str],
    state: CommandState,
    values: dict[str, Any],
) -> int:
    result = await session.execute(
        sa.update(NodeCommand)
        .where(
            NodeCommand.node_id == node_id,
            NodeCommand.id.in_(ids),
            NodeCommand.state.in_(sources(state)),
        )
        .values(state=state, **values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def expire(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        sa.update(NodeCommand)
        .where(NodeCommand.state.in_(sources("expired")), NodeCommand.expires_at <= now)
        .values(state="expired")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def newest_of_type(
    session: AsyncSession, node_id: int, type: str, limit: int
) -> Sequence[NodeCommand]:
    """A node's latest commands of one type, newest first (ties on created_at in any order)."""
    stmt = (
        sa.select(NodeCommand)
        .where(NodeCommand.node_id == node_id, NodeCommand.type == type)
        .order_by(NodeCommand.created_at.desc())
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def get(session: AsyncSession, command_id: str) -> NodeCommand | None:
    return await session.get(NodeCommand, command_id)


async def nodes_with_pending(
    session: AsyncSession, now: datetime, resend_before: datetime
) -> list[int]:
    """Nodes with commands to hand out: pending ones, or ones due to be sent again."""
    due = sa.or_(
        NodeCommand.state == "pending",
        sa.and_(NodeCommand.state == "sent", NodeCommand.sent_at < resend_before),
    )
    stmt = sa.select(NodeCommand.node_id).where(due, NodeCommand.expires_at > now).distinct()
    return list(await session.scalars(stmt))
