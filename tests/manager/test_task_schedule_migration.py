"""Migration 0015 on every database: tasks scheduled before it become due, the others do not,
and the first scheduler pass gives them their real next time without firing them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from opscaffold.manager import migrate
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.db import create_engine, session_factory, transaction
from opscaffold.manager.task import service
from opscaffold.manager.task.keys import TaskKey
from tests.manager.test_migrations import MigrationDb, connect, fresh_db  # noqa: F401

pytestmark = [pytest.mark.timeout(180), pytest.mark.db_matrix]
TASKS = sa.table(
    "tasks",
    *(sa.column(c) for c in ("id", "name", "type", "cron_expr", "status", "created_by")),
    sa.column("content", sa.JSON),
)


async def test_tasks_scheduled_before_the_migration_get_their_next_time_without_firing(
    fresh_db: MigrationDb,  # noqa: F811
) -> None:
    settings = fresh_db.settings
    await asyncio.to_thread(migrate.upgrade, settings, "0014")
    schedules = {
        1: ("*/5 * * * *", "enabled"),
        2: ("*/5 * * * *", "disabled"),
        3: (None, "enabled"),
    }
    rows: list[dict[str, Any]] = [
        {"id": i, "cron_expr": cron, "status": status, "name": f"t{i}", "type": "custom"}
        | {"created_by": 1, "content": {}}
        for i, (cron, status) in schedules.items()
    ]
    async with connect(settings) as conn:
        await conn.execute(sa.insert(TASKS), rows)
        await conn.commit()
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    await asyncio.to_thread(migrate.upgrade, settings)

    scheduled = sa.table(
        "tasks", sa.column("id"), sa.column("next_run_at", sa.DateTime), sa.column("misfire")
    )
    select = sa.select(scheduled).order_by(scheduled.c.id)
    async with connect(settings) as conn:
        migrated = {r[0]: (r[1], r[2]) for r in await conn.execute(select)}
    marked = migrated[1][0]
    assert marked is not None
    assert before <= marked <= before + timedelta(minutes=1)
    assert migrated[2][0] is None
    assert migrated[3][0] is None
    assert {m for _, m in migrated.values()} == {"skip"}

    engine = create_engine(settings.database)
    try:
        async with transaction(session_factory(engine)) as session:
            fired = await service.fire_due(
                session, CommandBus(), lambda: TaskKey.load(settings), settings.task, marked
            )
    finally:
        await engine.dispose()
    async with connect(settings) as conn:
        after = {r[0]: r[1] for r in await conn.execute(select)}
        executions = await conn.scalar(sa.text("SELECT count(*) FROM task_executions"))
    assert fired == executions == 0
    assert after[1] is not None
    assert after[1] > marked
    assert (after[1].minute % 5, after[1].second) == (0, 0)
