"""SQL for enrollment tokens and node credentials."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import EnrollmentToken, Node, NodeCredential, NodeMetricLatest


async def add(session: AsyncSession, token: EnrollmentToken) -> EnrollmentToken:
    session.add(token)
    await session.flush()
    return token


async def count(session: AsyncSession) -> int:
    total = await session.scalar(sa.select(sa.func.count()).select_from(EnrollmentToken))
    return int(total or 0)


async def by_hash(session: AsyncSession, token_hash: str) -> EnrollmentToken | None:
    stmt = sa.select(EnrollmentToken).where(EnrollmentToken.token_hash == token_hash)
    return (await session.scalars(stmt)).first()


async def get(session: AsyncSession, token_id: int) -> EnrollmentToken | None:
    return await session.get(EnrollmentToken, token_id)


async def list_all(session: AsyncSession) -> Sequence[EnrollmentToken]:
    return (await session.scalars(sa.select(EnrollmentToken).order_by(EnrollmentToken.id))).all()


async def use(session: AsyncSession, token_id: int, now: datetime) -> bool:
    """Count one use, atomically refusing a token that is revoked, expired or used up."""
    result = await session.execute(
        sa.update(EnrollmentToken)
        .where(
            EnrollmentToken.id == token_id,
            EnrollmentToken.revoked_at.is_(None),
            sa.or_(EnrollmentToken.expires_at.is_(None), EnrollmentToken.expires_at > now),
            sa.or_(
                EnrollmentToken.max_uses.is_(None), EnrollmentToken.uses < EnrollmentToken.max_uses
            ),
        )
        .values(uses=EnrollmentToken.uses + 1, last_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def node_by_credential(session: AsyncSession, token_hash: str) -> tuple[int, str] | None:
    stmt = (
        sa.select(Node.id, Node.uuid)
        .join(NodeCredential, NodeCredential.node_id == Node.id)
        .where(NodeCredential.token_hash == token_hash)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def node_by_uuid(session: AsyncSession, node_uuid: str) -> tuple[int, str] | None:
    row = (
        await session.execute(sa.select(Node.id, Node.uuid).where(Node.uuid == node_uuid))
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def set_credential(
    session: AsyncSession, node_id: int, token_hash: str, now: datetime
) -> None:
    await session.execute(sa.delete(NodeCredential).where(NodeCredential.node_id == node_id))
    await session.execute(
        sa.insert(NodeCredential).values(node_id=node_id, token_hash=token_hash, created_at=now)
    )


async def insert_node(session: AsyncSession, values: dict[str, object]) -> int:
    node = Node(**values)  # the ORM reads the new id back portably (MySQL has no RETURNING)
    session.add(node)
    await session.flush()
    return node.id


async def node_values(session: AsyncSession, node_id: int, columns: list[str]) -> dict[str, object]:
    stmt = sa.select(*(Node.__table__.c[c] for c in columns)).where(Node.id == node_id)
    row = (await session.execute(stmt)).first()
    return {} if row is None else dict(zip(columns, row, strict=True))


async def update_node(session: AsyncSession, node_id: int, values: dict[str, object]) -> None:
    await session.execute(sa.update(Node).where(Node.id == node_id).values(**values))


async def node_activity(
    session: AsyncSession, node_id: int
) -> tuple[datetime, datetime | None, bool] | None:
    """When the node was created, its last heartbeat, and whether any report of it is stored."""
    reported = sa.exists().where(NodeMetricLatest.node_id == Node.id)
    stmt = sa.select(Node.created_at, Node.last_heartbeat, reported).where(Node.id == node_id)
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1], bool(row[2]))
