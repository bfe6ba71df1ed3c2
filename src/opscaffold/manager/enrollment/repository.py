"""SQL for enrollment tokens and node credentials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import (
    EnrollmentToken,
    Node,
    NodeCredential,
    NodeMetricLatest,
)


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


# -- registration in batches: each is one statement (or one per chunk) for a whole batch -----
@dataclass(frozen=True, slots=True)
class StoredNode:
    node_id: int
    created_at: datetime
    last_heartbeat: datetime | None
    has_reports: bool
    enrollment_key_hash: str | None
    current: dict[str, object]  # the requested columns, as stored


async def nodes_by_uuids(
    session: AsyncSession, uuids: Sequence[str], columns: Sequence[str]
) -> dict[str, StoredNode]:
    """The nodes with these uuids: what a registration compares against and decides on."""
    if not uuids:
        return {}
    reported = sa.exists().where(NodeMetricLatest.node_id == Node.id)
    wanted = [Node.__table__.c[c] for c in columns]
    stmt = sa.select(
        Node.id,
        Node.uuid,
        Node.created_at,
        Node.last_heartbeat,
        reported,
        Node.enrollment_key_hash,
        *wanted,
    ).where(Node.uuid.in_(uuids))
    found = {}
    for (
        node_id,
        node_uuid,
        created_at,
        last_heartbeat,
        has_reports,
        enrollment_key_hash,
        *current,
    ) in await session.execute(stmt):
        found[str(node_uuid)] = StoredNode(
            int(node_id),
            created_at,
            last_heartbeat,
            bool(has_reports),
            enrollment_key_hash,
            dict(zip(columns, current, strict=True)),
        )
    return found


async def nodes_by_credentials(
    session: AsyncSession, token_hashes: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """Token digest → (node id, uuid) of the nodes these node tokens belong to."""
    if not token_hashes:
        return {}
    stmt = (
        sa.select(NodeCredential.token_hash, Node.id, Node.uuid)
        .join(Node, NodeCredential.node_id == Node.id)
        .where(NodeCredential.token_hash.in_(token_hashes))
    )
    rows = await session.execute(stmt)
    return {
        str(token_hash): (int(node_id), str(node_uuid)) for token_hash, node_id, node_uuid in rows
    }


async def by_hashes(
    session: AsyncSession, token_hashes: Sequence[str]
) -> Sequence[EnrollmentToken]:
    if not token_hashes:
        return []
    stmt = sa.select(EnrollmentToken).where(EnrollmentToken.token_hash.in_(token_hashes))
    return (await session.scalars(stmt)).all()


async def replace_credentials(
    session: AsyncSession, token_hashes: dict[int, str], replacing: Sequence[int], now: datetime
) -> None:
    """Give each node its token digest; `replacing` names the nodes that may hold an earlier
    token, which goes (new nodes hold none: no delete, so no gap locks taken for them)."""
    if replacing:
        stmt = sa.delete(NodeCredential).where(NodeCredential.node_id.in_(sorted(replacing)))
        await session.execute(stmt)
    rows = [{"node_id": n, "token_hash": h, "created_at": now} for n, h in token_hashes.items()]
    if rows:
        await session.execute(sa.insert(NodeCredential), rows)


async def use(session: AsyncSession, token_id: int, uses: int, now: datetime) -> bool:
    """Count `uses` uses at once, atomically; False (nothing counted) when the token is
    revoked or expired, or has fewer uses left."""
    result = await session.execute(
        sa.update(EnrollmentToken)
        .where(
            EnrollmentToken.id == token_id,
            EnrollmentToken.revoked_at.is_(None),
            sa.or_(EnrollmentToken.expires_at.is_(None), EnrollmentToken.expires_at > now),
            sa.or_(
                EnrollmentToken.max_uses.is_(None),
                EnrollmentToken.uses + uses <= EnrollmentToken.max_uses,
            ),
        )
        .values(uses=EnrollmentToken.uses + uses, last_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
