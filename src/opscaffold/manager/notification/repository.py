"""SQL for notification channels and the delivery queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import NotificationChannel, NotificationDelivery

CHUNK = 1000  # rows per multi-row INSERT, ids per IN list
D = NotificationDelivery


# -- channels -------------------------------------------------------------------------------


async def list_channels(session: AsyncSession) -> Sequence[NotificationChannel]:
    stmt = sa.select(NotificationChannel).order_by(NotificationChannel.id)
    return (await session.scalars(stmt)).all()


async def get_channel(
    session: AsyncSession, channel_id: int, *, locked: bool = False
) -> NotificationChannel | None:
    stmt = sa.select(NotificationChannel).where(NotificationChannel.id == channel_id)
    if locked:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def name_taken(session: AsyncSession, name: str, other_than: int | None = None) -> bool:
    stmt = sa.select(NotificationChannel.id).where(NotificationChannel.name == name)
    if other_than is not None:
        stmt = stmt.where(NotificationChannel.id != other_than)
    return (await session.scalar(stmt.limit(1))) is not None


async def add_channel(session: AsyncSession, channel: NotificationChannel) -> NotificationChannel:
    session.add(channel)
    await session.flush()
    return channel


async def delete_channel(session: AsyncSession, channel: NotificationChannel) -> None:
    await session.delete(channel)
    await session.flush()


async def enabled_channel_ids(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        stmt = sa.select(NotificationChannel.id).where(
            NotificationChannel.id.in_(part), NotificationChannel.enabled == 1
        )
        found.update(await session.scalars(stmt))
    return found


async def channel_ids_by_ref(
    session: AsyncSession, ids: Sequence[int], names: Sequence[str]
) -> tuple[set[int], dict[str, int]]:
    """Which of `ids` exist, and the id of each of `names` that does."""
    if not ids and not names:
        return set(), {}
    stmt = sa.select(NotificationChannel.id, NotificationChannel.name).where(
        sa.or_(NotificationChannel.id.in_(ids), NotificationChannel.name.in_(names))
    )
    rows = (await session.execute(stmt)).all()
    wanted = set(names)
    return {i for i, _ in rows if i in ids}, {n: i for i, n in rows if n in wanted}


# -- deliveries -----------------------------------------------------------------------------


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await session.execute(sa.insert(D), list(rows[start : start + CHUNK]))


async def insert_delivery(session: AsyncSession, row: dict[str, Any]) -> int:
    delivery = D(**row)
    session.add(delivery)
    await session.flush()
    return delivery.id


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """Pending and due, or claimed by a sender whose lease ran out (it died mid-send)."""
    return sa.or_(
        sa.and_(D.status == "pending", D.next_attempt_at <= now),
        sa.and_(D.status == "sending", D.lease_until < now),
    )


async def due_ids(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Deliveries to claim, oldest due first: one indexed range per status."""
    pending = (
        sa.select(D.id)
        .where(D.status == "pending", D.next_attempt_at <= now)
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
    )
    ids = list(await session.scalars(pending))
    if len(ids) < limit:
        stale = (
            sa.select(D.id)
            .where(D.status == "sending", D.lease_until < now)
            .order_by(D.lease_until, D.id)
            .limit(limit - len(ids))
        )
        ids += await session.scalars(stale)
    return ids


async def claim(
    session: AsyncSession, ids: Sequence[int], token: str, now: datetime, lease_until: datetime
) -> int:
    """Take the given deliveries that are still due (the guard makes a racing sender's
    UPDATE find them taken), counting the attempt now: a delivery that kills its sender
    still runs out of attempts."""
    if not ids:
        return 0
    result = await session.execute(
        sa.update(D)
        .where(D.id.in_(ids), _due(now))
        .values(
            status="sending", claimed_by=token, lease_until=lease_until, attempts=D.attempts + 1
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def claimed(
    session: AsyncSession, token: str
) -> list[tuple[NotificationDelivery, NotificationChannel | None]]:
    stmt = (
        sa.select(D, NotificationChannel)
        .outerjoin(NotificationChannel, NotificationChannel.id == D.channel_id)
        .where(D.claimed_by == token, D.status == "sending")
        .order_by(D.id)
    )
    return [(d, c) for d, c in (await session.execute(stmt)).all()]


async def record_sent(session: AsyncSession, ids: Sequence[int], token: str, now: datetime) -> int:
    """Mark sent what this claim still holds (a claim taken over after its lease is not)."""
    if not ids:
        return 0
    result = await session.execute(
        sa.update(D)
        .where(D.id.in_(ids), D.claimed_by == token, D.status == "sending")
        .values(status="sent", sent_at=now, lease_until=None, last_error=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def record_failure(
    session: AsyncSession, delivery_id: int, token: str, values: dict[str, Any]
) -> int:
    result = await session.execute(
        sa.update(D)
        .where(D.id == delivery_id, D.claimed_by == token, D.status == "sending")
        .values(lease_until=None, **values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def deliveries_of_alert(
    session: AsyncSession, alert_id: int, limit: int
) -> list[tuple[NotificationDelivery, str | None, str | None]]:
    stmt = (
        sa.select(D, NotificationChannel.name, NotificationChannel.type)
        .outerjoin(NotificationChannel, NotificationChannel.id == D.channel_id)
        .where(D.alert_id == alert_id)
        .order_by(D.id)
        .limit(limit)
    )
    return [(d, name, kind) for d, name, kind in (await session.execute(stmt)).all()]
