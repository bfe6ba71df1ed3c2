"""SQL for sessions (token families) and refresh tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import RefreshToken, TokenFamily, User


async def add_family(
    session: AsyncSession, family_id: str, user_id: int, expires_at: datetime, now: datetime
) -> None:
    await session.execute(
        sa.insert(TokenFamily).values(
            id=family_id, user_id=user_id, expires_at=expires_at, created_at=now
        )
    )


async def add_refresh_token(
    session: AsyncSession, jti: str, family_id: str, expires_at: datetime, now: datetime
) -> None:
    await session.execute(
        sa.insert(RefreshToken).values(
            jti=jti, family_id=family_id, expires_at=expires_at, issued_at=now
        )
    )


async def claim_refresh_token(session: AsyncSession, jti: str, now: datetime) -> bool:
    """Mark a refresh token used; False when it was already used (a replay) or is unknown."""
    result = await session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == jti, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_family(session: AsyncSession, family_id: str, reason: str, now: datetime) -> None:
    await session.execute(
        sa.update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


async def revoke_user_families(
    session: AsyncSession, user_id: int, reason: str, now: datetime
) -> list[str]:
    rows = await session.scalars(
        sa.select(TokenFamily.id).where(
            TokenFamily.user_id == user_id,
            TokenFamily.revoked_at.is_(None),
            TokenFamily.expires_at > now,
        )
    )
    ids = list(rows)
    if ids:
        await session.execute(
            sa.update(TokenFamily)
            .where(TokenFamily.id.in_(ids))
            .values(revoked_at=now, revoked_reason=reason)
        )
    return ids


async def auth_state_row(
    session: AsyncSession, user_id: int, family_id: str
) -> sa.Row[str, str, int, str, datetime | None] | None:
    """The user's name, role and status with their session's revocation, in one query."""
    stmt = (
        sa.select(User.username, User.role, User.status, TokenFamily.id, TokenFamily.revoked_at)
        .select_from(User)
        .join(
            TokenFamily,
            sa.and_(TokenFamily.user_id == User.id, TokenFamily.id == family_id),
            isouter=True,
        )
        .where(User.id == user_id)
    )
    return (await session.execute(stmt)).first()


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(sa.delete(TokenFamily).where(TokenFamily.expires_at < now))
    return int(result.rowcount)  # type: ignore[attr-defined]
