"""Metric jobs: day partitions and retention (hourly), rollups (every minute)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from opscaffold.manager.config import MetricsSettings, Settings
from opscaffold.manager.jobs.registry import job
from opscaffold.manager.logging import get_logger
from opscaffold.manager.metric import partitions, rollup

log = get_logger("opscaffold.metric")


def _engine(session: AsyncSession) -> AsyncEngine:
    engine = session.bind
    assert isinstance(engine, AsyncEngine), "job sessions are bound to the engine"
    return engine


async def maintain_partitions(
    engine: AsyncEngine, settings: MetricsSettings, now: datetime
) -> partitions.Maintenance:
    """Partitions for the coming days, expired ones dropped, leftover rows deleted in chunks.

    DDL runs outside any transaction (MySQL commits around it anyway; PostgreSQL's concurrent
    detach refuses to run inside one), and each chunk of a delete takes its own connection,
    so on SQLite, with one connection for everyone, ingest gets its turn between chunks.
    """
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        done = await auto.run_sync(partitions.maintain, settings, now)
    for table, cutoff in done.delete_before.items():
        while True:
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                deleted = await auto.run_sync(partitions.delete_chunk, table, cutoff)
            if deleted < partitions.DELETE_CHUNK:
                break
    if any(done.created.values()) or any(done.dropped.values()):
        log.info(
            "metric partitions maintained",
            created={t: [d.isoformat() for d in days] for t, days in done.created.items() if days},
            dropped={t: [d.isoformat() for d in days] for t, days in done.dropped.items() if days},
        )
    return done


@job("metrics.partitions", every=lambda _: timedelta(hours=1))
async def partitions_job(session: AsyncSession, settings: Settings, now: datetime) -> None:
    await maintain_partitions(_engine(session), settings.metrics, now)


@job("metrics.rollup", every=lambda s: s.metrics.rollup_interval)
async def rollup_job(session: AsyncSession, settings: Settings, now: datetime) -> None:
    # The budget keeps one run within its tick; a backlog is worked off over later ticks.
    done = await rollup.run_pass(
        _engine(session), settings.metrics, now, budget=settings.metrics.rollup_interval
    )
    if done.left:
        log.warning("metric rollups are behind", done=len(done.buckets), left=done.left)
