"""SQL of rollouts and their update records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import Agent, Node, NodeCommand, Rollout, UpdateRecord
from opscaffold.manager.models.release import ACTIVE_ROLLOUT_STATUSES
from opscaffold.manager.rollout.states import FINAL, UpdateState, sources

INSERT_CHUNK = 1000  # rows per multi-row statement


async def lock_states(
    session: AsyncSession, record_ids: Collection[int]
) -> dict[int, tuple[int, UpdateState]]:
    """Record id → (node id, state) of the records that exist, locked until the transaction
    ends, in id order (so two batches lock in one order). A locking read sees the latest
    committed state, whatever the transaction's snapshot."""
    if not record_ids:
        return {}
    stmt = (
        sa.select(UpdateRecord.id, UpdateRecord.node_id, UpdateRecord.status)
        .where(UpdateRecord.id.in_(sorted(record_ids)))
        .order_by(UpdateRecord.id)
        .with_for_update()
    )
    states: dict[int, tuple[int, UpdateState]] = {}
    for record_id, node_id, status in await session.execute(stmt):
        states[int(record_id)] = (int(node_id), cast(UpdateState, status))  # the column's enum
    return states


async def move_many(
    session: AsyncSession,
    record_ids: Sequence[int],
    current: UpdateState,
    target: UpdateState,
    values: dict[str, Any],
) -> int:
    """Move records from `current` to `target` with the same values, in one statement;
    returns how many moved (a record no longer in `current` is left as it is)."""
    result = await session.execute(
        sa.update(UpdateRecord)
        .where(UpdateRecord.id.in_(record_ids), UpdateRecord.status == current)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- rollouts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What decides whether a node can take a version."""

    id: int
    name: str
    os: str | None
    arch: str | None
    online: bool
    version: str | None  # of the component being rolled out


async def node_facts(
    session: AsyncSession, node_ids: Sequence[int], component: str
) -> list[NodeFacts]:
    """One query for a chunk of nodes: platform, status and the component's version."""
    version = Agent.version if component == "agent" else Node.daemon_version
    stmt = (
        sa.select(Node.id, Node.hostname, Node.os, Node.arch, Node.status, version)
        .outerjoin(Agent, Agent.node_id == Node.id)
        .where(Node.id.in_(node_ids))
        .order_by(Node.id)
    )
    return [
        NodeFacts(int(r[0]), str(r[1]), r[2], r[3], r[4] == "online", r[5])
        for r in await session.execute(stmt)
    ]


def _held() -> sa.ColumnElement[bool]:
    return sa.and_(
        UpdateRecord.status.not_in(FINAL),
        Rollout.status.in_(ACTIVE_ROLLOUT_STATUSES),
    )


async def held_nodes(
    session: AsyncSession, node_ids: Sequence[int], component: str
) -> dict[int, str]:
    """Node id → batch id of the active rollout of the component that holds it. A locking
    read: on MySQL it sees the rollouts committed while this deploy waited for the component's
    lock, which its transaction's earlier snapshot would not."""
    stmt = (
        sa.select(UpdateRecord.node_id, UpdateRecord.batch_id)
        .join(Rollout, Rollout.batch_id == UpdateRecord.batch_id)
        .where(UpdateRecord.node_id.in_(node_ids), Rollout.component == component, _held())
        .with_for_update(read=True)
    )
    return {int(r[0]): str(r[1]) for r in await session.execute(stmt)}


async def add_rollout(session: AsyncSession, rollout: Rollout) -> None:
    session.add(rollout)
    await session.flush()


async def insert_records(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """All records of a rollout, in batched multi-row INSERTs."""
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(sa.insert(UpdateRecord), rows[start : start + INSERT_CHUNK])


async def get_rollout(
    session: AsyncSession, batch_id: str, *, locked: bool = False
) -> Rollout | None:
    stmt = sa.select(Rollout).where(Rollout.batch_id == batch_id)
    if locked:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def page_rollouts(
    session: AsyncSession, offset: int, limit: int, status: str | None
) -> tuple[int, Sequence[Rollout]]:
    where = [Rollout.status == status] if status is not None else []
    total = await session.scalar(sa.select(sa.func.count()).select_from(Rollout).where(*where))
    stmt = (
        sa.select(Rollout)
        .where(*where)
        .order_by(Rollout.created_at.desc(), Rollout.batch_id)
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), (await session.scalars(stmt)).all()


async def state_counts(
    session: AsyncSession, batch_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """batch id → record state → count, in one grouped query."""
    if not batch_ids:
        return {}
    stmt = (
        sa.select(UpdateRecord.batch_id, UpdateRecord.status, sa.func.count())
        .where(UpdateRecord.batch_id.in_(batch_ids))
        .group_by(UpdateRecord.batch_id, UpdateRecord.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for batch_id, status, n in await session.execute(stmt):
        counts.setdefault(str(batch_id), {})[str(status)] = int(n)
    return counts


async def records_with_names(
    session: AsyncSession,
    batch_id: str,
    state: UpdateState | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[tuple[UpdateRecord, str | None]]:
    """A rollout's records in wave order with their node's name; optionally of one state
    and one page."""
    stmt = (
        sa.select(UpdateRecord, Node.hostname)
        .outerjoin(Node, Node.id == UpdateRecord.node_id)
        .where(UpdateRecord.batch_id == batch_id)
        .order_by(UpdateRecord.wave, UpdateRecord.id)
        .offset(offset)
        .limit(limit)
    )
    if state is not None:
        stmt = stmt.where(UpdateRecord.status == state)
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def move_rollout(
    session: AsyncSession, batch_id: str, sources: Sequence[str], values: dict[str, Any]
) -> bool:
    """Change a rollout only if it is still in one of `sources`: the guard every replica
    races through, so one wins and the others change nothing."""
    result = await session.execute(
        sa.update(Rollout)
        .where(Rollout.batch_id == batch_id, Rollout.status.in_(sources))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def start_wave(
    session: AsyncSession,
    batch_id: str,
    from_wave: int,
    to_wave: int,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Move a running rollout from one wave to the next; False when another got there first."""
    result = await session.execute(
        sa.update(Rollout)
        .where(
            Rollout.batch_id == batch_id,
            Rollout.status == "running",
            Rollout.current_wave == from_wave,
        )
        .values(current_wave=to_wave, wave_done_at=None, expires_at=expires_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def running_rollouts(session: AsyncSession) -> Sequence[Rollout]:
    stmt = sa.select(Rollout).where(Rollout.status == "running").order_by(Rollout.created_at)
    return (await session.scalars(stmt.execution_options(populate_existing=True))).all()


async def wave_records(session: AsyncSession, batch_id: str, wave: int) -> list[tuple[int, int]]:
    """(record id, node id) of the wave's records still pending."""
    stmt = (
        sa.select(UpdateRecord.id, UpdateRecord.node_id)
        .where(
            UpdateRecord.batch_id == batch_id,
            UpdateRecord.wave == wave,
            UpdateRecord.status == "pending",
        )
        .order_by(UpdateRecord.id)
    )
    return [(int(r[0]), int(r[1])) for r in await session.execute(stmt)]


async def set_commands(session: AsyncSession, command_of: dict[int, str]) -> None:
    """Remember which command carries each record's order: one UPDATE per chunk of records
    (a CASE on the id), not one per record."""
    pairs = list(command_of.items())
    for start in range(0, len(pairs), INSERT_CHUNK):
        part = dict(pairs[start : start + INSERT_CHUNK])
        await session.execute(
            sa.update(UpdateRecord)
            .where(UpdateRecord.id.in_(part))
            .values(command_id=sa.case(part, value=UpdateRecord.id))
            .execution_options(synchronize_session=False)
        )


async def unfinished_in_wave(session: AsyncSession, batch_id: str, wave: int) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(UpdateRecord)
        .where(
            UpdateRecord.batch_id == batch_id,
            UpdateRecord.wave == wave,
            UpdateRecord.status.not_in(FINAL),
        )
    )
    return int(await session.scalar(stmt) or 0)


async def failures(session: AsyncSession, batch_id: str) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(UpdateRecord)
        .where(UpdateRecord.batch_id == batch_id, UpdateRecord.status.in_(("failed", "rollback")))
    )
    return int(await session.scalar(stmt) or 0)


async def unhealthy_in_wave(
    session: AsyncSession, batch_id: str, wave: int, agent: bool, reported_after: datetime
) -> int:
    """Nodes of the wave updated successfully that are no longer online (or, for an agent
    rollout, whose agent is missing or reported not running after `reported_after`: a report
    made while the agent restarted for its own update says nothing of the new one)."""
    unhealthy = Node.status != "online"
    if agent:
        stopped = sa.and_(Agent.status != "running", Agent.updated_at > reported_after)
        unhealthy = sa.or_(unhealthy, Agent.node_id.is_(None), stopped)
    stmt = (
        sa.select(sa.func.count())
        .select_from(UpdateRecord)
        .join(Node, Node.id == UpdateRecord.node_id)
        .outerjoin(Agent, Agent.node_id == Node.id)
        .where(
            UpdateRecord.batch_id == batch_id,
            UpdateRecord.wave == wave,
            UpdateRecord.status == "success",
            unhealthy,
        )
    )
    return int(await session.scalar(stmt) or 0)


async def fail_pending(
    session: AsyncSession,
    batch_ids: sa.ColumnElement[bool],
    reason: str,
    now: datetime,
    *,
    current_wave_only: bool = False,
    unsent_only: bool = False,
) -> int:
    """Records still pending in the rollouts `batch_ids` selects become failed (the state
    table's guard: only pending records are touched); with `current_wave_only`, only those of
    each rollout's current wave (later waves' orders have not been sent yet); with
    `unsent_only`, only those whose order was never written to the daemon (an order written
    may have been received, and is then carried out and reported)."""
    chosen = sa.select(Rollout.batch_id).where(batch_ids).scalar_subquery()
    in_wave: list[sa.ColumnElement[bool]] = []
    if unsent_only:
        in_wave.append(sa.or_(UpdateRecord.command_id.is_(None), _order_in(("pending", "expired"))))
    if current_wave_only:
        current = (
            sa.select(Rollout.current_wave)
            .where(Rollout.batch_id == UpdateRecord.batch_id)
            .scalar_subquery()
        )
        in_wave.append(UpdateRecord.wave == current)
    result = await session.execute(
        sa.update(UpdateRecord)
        .where(
            *in_wave,
            UpdateRecord.batch_id.in_(chosen),
            UpdateRecord.status.in_(sources("failed")),
            UpdateRecord.status == "pending",
        )
        .values(status="failed", error_message=reason, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def expire_undelivered(session: AsyncSession, batch_id: str) -> int:
    """Orders of the rollout no daemon has received yet are withdrawn."""
    commands = sa.select(UpdateRecord.command_id).where(
        UpdateRecord.batch_id == batch_id, UpdateRecord.command_id.is_not(None)
    )
    result = await session.execute(
        sa.update(NodeCommand)
        .where(NodeCommand.id.in_(commands.scalar_subquery()), NodeCommand.state == "pending")
        .values(state="expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _order_in(states: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """The record's order is in one of `states` in the outbox."""
    return sa.exists().where(
        NodeCommand.id == UpdateRecord.command_id, NodeCommand.state.in_(states)
    )


async def fail_expired_orders(session: AsyncSession, reason: str, now: datetime) -> int:
    """Pending records whose order expired in the outbox unanswered fail: the node never took
    it (e.g. written to a daemon of a cancelled rollout that then went away)."""
    result = await session.execute(
        sa.update(UpdateRecord)
        .where(
            UpdateRecord.status == "pending",
            UpdateRecord.command_id.is_not(None),
            _order_in(("expired",)),
        )
        .values(status="failed", error_message=reason, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def fail_orphans(session: AsyncSession, batch_id: str, wave: int, now: datetime) -> int:
    """Pending records of the wave whose node was deleted fail: no order can reach it."""
    result = await session.execute(
        sa.update(UpdateRecord)
        .where(
            UpdateRecord.batch_id == batch_id,
            UpdateRecord.wave == wave,
            UpdateRecord.status == "pending",
            UpdateRecord.node_id.not_in(sa.select(Node.id).scalar_subquery()),
        )
        .values(status="failed", error_message="the node was deleted", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


UNDER_WAY: tuple[UpdateState, ...] = ("downloading", "installing", "verifying")
STUCK = "the node stopped reporting on this update"


async def fail_stuck(session: AsyncSession, silent_since: datetime, now: datetime) -> int:
    """Records under way with no report since `silent_since` fail (the state table allows
    failed from each of them)."""
    last = sa.func.coalesce(UpdateRecord.reported_at, UpdateRecord.started_at)
    result = await session.execute(
        sa.update(UpdateRecord)
        .where(
            UpdateRecord.status.in_(UNDER_WAY),
            UpdateRecord.status.in_(sources("failed")),
            last < silent_since,
        )
        .values(status="failed", error_message=STUCK, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def updated_nodes(session: AsyncSession, batch_id: str) -> list[tuple[int, str, str | None]]:
    """(node id, node name, version it ran before) of the rollout's successful records."""
    stmt = (
        sa.select(UpdateRecord.node_id, Node.hostname, UpdateRecord.from_version)
        .join(Node, Node.id == UpdateRecord.node_id)
        .where(UpdateRecord.batch_id == batch_id, UpdateRecord.status == "success")
        .order_by(UpdateRecord.node_id)
    )
    return [(int(r[0]), str(r[1]), r[2]) for r in await session.execute(stmt)]
