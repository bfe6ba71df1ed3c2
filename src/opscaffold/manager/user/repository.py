"""SQL for users."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.kit.sql import contains_text
from opscaffold.manager.models import User

ACTIVE = 1


async def get(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User | None:
    return await session.get(User, user_id, with_for_update=for_update)


async def get_by_username_key(session: AsyncSession, key: str) -> User | None:
    """The user whose canonical name (`names.canonical_username`) is `key`."""
    return (await session.scalars(sa.select(User).where(User.username_key == key))).first()


async def credentials(session: AsyncSession, key: str) -> sa.Row[int, str, int] | None:
    """Id, password hash and status of the user whose canonical name is `key`, as plain values
    that stay readable once the transaction that read them has ended."""
    stmt = sa.select(User.id, User.password_hash, User.status).where(User.username_key == key)
    return (await session.execute(stmt)).first()


async def taken(
    session: AsyncSession, username_key: str | None, email: str | None, *, exclude_id: int = 0
) -> bool:
    clauses = []
    if username_key is not None:
        clauses.append(User.username_key == username_key)
    if email is not None:
        clauses.append(User.email == email)
    if not clauses:
        return False
    stmt = sa.select(User.id).where(sa.or_(*clauses), User.id != exclude_id).limit(1)
    return (await session.scalar(stmt)) is not None


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


async def delete(session: AsyncSession, user: User) -> None:
    await session.delete(user)
    await session.flush()


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(sa.select(sa.func.count()).select_from(User)) or 0)


async def lock_active_admins(session: AsyncSession) -> list[int]:
    """Ids of active admins, locked so two concurrent demotions cannot both pass the check."""
    stmt = sa.select(User.id).where(User.role == "admin", User.status == ACTIVE).with_for_update()
    return list(await session.scalars(stmt))


async def list_page(
    session: AsyncSession, *, offset: int, limit: int, keyword: str | None, role: str | None
) -> tuple[int, Sequence[User]]:
    conditions = []
    if keyword:
        conditions.append(
            sa.or_(contains_text(User.username, keyword), contains_text(User.email, keyword))
        )
    if role:
        conditions.append(User.role == role)
    total = await session.scalar(sa.select(sa.func.count()).select_from(User).where(*conditions))
    rows = await session.scalars(
        sa.select(User).where(*conditions).order_by(User.id).offset(offset).limit(limit)
    )
    return int(total or 0), rows.all()


async def list_all(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(sa.select(User).order_by(User.id))).all()
