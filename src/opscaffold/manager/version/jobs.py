"""Package storage upkeep."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import job
from opscaffold.manager.logging import get_logger
from opscaffold.manager.version import repository
from opscaffold.manager.version.storage import ORPHAN_AFTER_S, PackageStore

CHUNK = 1000
log = get_logger("opscaffold.version")


@job("version.sweep_files", every=lambda _: timedelta(hours=1))
async def sweep_files(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Remove package files no version names (an upload whose commit failed, a deletion whose
    file removal failed) and partial uploads a stopped Manager left."""
    store = PackageStore.of(settings.storage)
    store.prepare()
    candidates = store.stored_names(ORPHAN_AFTER_S)
    named: set[str] = set()
    for start in range(0, len(candidates), CHUNK):
        named |= await repository.named_files(session, candidates[start : start + CHUNK])
    orphans = [name for name in candidates if name not in named]
    for name in orphans:
        store.remove(name)
    if orphans:
        log.info("removed package files no version names", count=len(orphans))
