"""SQL for versions (release packages)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.models import UpdateRecord, Version, VersionLock
from opscaffold.manager.rollout.states import FINAL


@dataclass(frozen=True, slots=True)
class Platform:
    """The packages one daemon may install: one component for one os and arch."""

    component: str
    os: str
    arch: str

    def where(self) -> list[sa.ColumnElement[bool]]:
        return [
            Version.component == self.component,
            Version.os == self.os,
            Version.arch == self.arch,
        ]


async def lock_component(session: AsyncSession, component: str) -> None:
    """Hold the component's lock row until the transaction ends (the migration makes one per
    component; one that is missing is made first)."""
    stmt = sa.select(VersionLock.component).where(VersionLock.component == component)
    if await session.scalar(stmt.with_for_update()) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(VersionLock(component=component))
    except sa.exc.IntegrityError:
        pass  # made meanwhile by another transaction
    await session.scalar(stmt.with_for_update())


async def add(session: AsyncSession, version: Version) -> Version:
    session.add(version)
    await session.flush()
    return version


async def get(session: AsyncSession, version_id: int, *, locked: bool = False) -> Version | None:
    """The row; `locked`: read again and held until the transaction ends."""
    if not locked:
        return await session.get(Version, version_id)
    stmt = sa.select(Version).where(Version.id == version_id).with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def find(session: AsyncSession, platform: Platform, version: str) -> Version | None:
    stmt = sa.select(Version).where(*platform.where(), Version.version == version)
    return (await session.scalars(stmt)).first()


async def exists(session: AsyncSession, platform: Platform, version: str) -> bool:
    stmt = sa.select(Version.id).where(*platform.where(), Version.version == version)
    return (await session.scalar(stmt)) is not None


async def page(
    session: AsyncSession,
    *,
    component: str | None,
    os: str | None,
    arch: str | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Version]]:
    conditions = [
        column == value
        for column, value in (
            (Version.component, component),
            (Version.os, os),
            (Version.arch, arch),
        )
        if value is not None
    ]
    total = await session.scalar(sa.select(sa.func.count()).select_from(Version).where(*conditions))
    stmt = (
        sa.select(Version)
        .where(*conditions)
        .order_by(Version.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), (await session.scalars(stmt)).all()


async def versions_of(session: AsyncSession, platform: Platform) -> list[tuple[int, str]]:
    """(id, version) of every package of the platform. A locking read: on MySQL it sees what
    was committed after this transaction's snapshot was taken (while it waited for the lock)."""
    stmt = (
        sa.select(Version.id, Version.version)
        .where(*platform.where())
        .order_by(Version.id)
        .with_for_update()
    )
    return [(int(row[0]), str(row[1])) for row in await session.execute(stmt)]


async def mark_latest(session: AsyncSession, platform: Platform, latest_id: int | None) -> None:
    flag = sa.case((Version.id == latest_id, 1), else_=0) if latest_id is not None else 0
    await session.execute(
        sa.update(Version)
        .where(*platform.where())
        .values(is_latest=flag)
        .execution_options(synchronize_session=False)
    )


async def delete(session: AsyncSession, version: Version) -> None:
    await session.delete(version)
    await session.flush()


async def unfinished_updates(session: AsyncSession, component: str, version: str) -> int:
    """Update records of a rollout to this version that have not reached a final state."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(UpdateRecord)
        .where(
            UpdateRecord.component == component,
            UpdateRecord.to_version == version,
            UpdateRecord.status.not_in(sorted(FINAL)),
        )
    )
    return int(await session.scalar(stmt) or 0)


async def named_files(session: AsyncSession, names: Sequence[str]) -> set[str]:
    """Which of these package files a version row names."""
    if not names:
        return set()
    stmt = sa.select(Version.file_path).where(Version.file_path.in_(list(names)))
    return set(await session.scalars(stmt))
