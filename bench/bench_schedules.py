"""The cron scheduler (`task.fire_schedules`) over 100,000 scheduled tasks.

Seeds its own database (`opscaffold_bench_schedules`, dropped and re-created): one online node
and N enabled tasks on hourly schedules spread over the hour (10% disabled), so each minute
about N/60 are due. Then it runs passes as the job does, each in its own transaction, and
reports the wall time, the statements sent and the plan of the due-task query: an idle pass
(nothing due) and a pass at a minute where N/60 tasks fire (up to the batch of 500 per pass).

    .venv/bin/python bench/bench_schedules.py [--backends mysql,postgres,sqlite]
                                              [--tasks 100000] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import explain, machine, markers, recreate_database, server_version, write_section
from sqlalchemy.ext.asyncio import AsyncEngine

from opscaffold.manager import migrate
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.db import create_engine, session_factory, transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Node, Task
from opscaffold.manager.task import service
from opscaffold.manager.task.keys import TaskKey

SLOT = os.environ.get("OPS_TEST_SLOT", "0")
DB_NAME = "opscaffold_bench_schedules" + ("" if SLOT == "0" else f"_s{SLOT}")
BATCH = 5_000
MARK_START, MARK_END = markers("bench_schedules")


def settings_for(backend: str, data_dir: str) -> Settings:
    env = {"OPS_DATA_DIR": data_dir, "OPS_LOG__LEVEL": "error"}
    if backend != "sqlite":
        env |= {
            "OPS_DATABASE__DRIVER": backend,
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__USER": "root" if backend == "mysql" else "postgres",
            "OPS_DATABASE__NAME": DB_NAME,
        }
    return load_settings(None, env)


async def seed(engine: AsyncEngine, tasks: int, hour: datetime) -> None:
    """One node; tasks at minute i % 60 of every hour, the next one due in `hour`."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(Node).values(
                uuid="00000000-0000-4000-8000-000000000001",
                hostname="bench",
                ip="192.0.2.1",
                status="online",
            )
        )
        for start in range(0, tasks, BATCH):
            rows = []
            for i in range(start, min(start + BATCH, tasks)):
                enabled = i % 10 != 9
                rows.append(
                    {
                        "name": f"task-{i}",
                        "type": "custom",
                        "content": {"handler": "system.info", "params": {}},
                        "cron_expr": f"{i % 60} * * * *",
                        "target_type": "all",
                        "target_value": [],
                        "status": "enabled" if enabled else "disabled",
                        "created_by": 1,
                        "next_run_at": hour + timedelta(minutes=i % 60) if enabled else None,
                    }
                )
            await conn.execute(sa.insert(Task), rows)


async def one_pass(engine: AsyncEngine, settings: Settings, key: TaskKey, now: datetime) -> Any:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        async with transaction(session_factory(engine)) as session:
            fired = await service.fire_due(session, CommandBus(), lambda: key, settings.task, now)
        elapsed = time.perf_counter() - started
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    return fired, elapsed * 1000, len(statements)


async def run(backend: str, tasks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = settings_for(backend, data_dir)
        if backend != "sqlite":
            await recreate_database(settings)
        await asyncio.to_thread(migrate.upgrade, settings)
        engine = create_engine(settings.database)
        try:
            hour = utcnow().replace(minute=0, second=0) + timedelta(hours=1)
            await seed(engine, tasks, hour)
            key = TaskKey.load(settings)
            query = (
                sa.select(Task.id, Task.cron_expr, Task.misfire, Task.next_run_at)
                .where(
                    Task.next_run_at <= hour - timedelta(seconds=30),
                    Task.status == "enabled",
                    Task.cron_expr.is_not(None),
                )
                .order_by(Task.next_run_at, Task.id)
                .limit(service.SCHEDULE_BATCH)
            )
            async with engine.connect() as conn:
                plan = await explain(conn, query) if backend != "sqlite" else await _plan(conn)
            version = await server_version(engine) if backend != "sqlite" else "SQLite"
            await one_pass(engine, settings, key, hour - timedelta(seconds=40))  # warm the pool
            idle = await one_pass(engine, settings, key, hour - timedelta(seconds=30))
            due = await one_pass(engine, settings, key, hour + timedelta(seconds=1))
            again = await one_pass(engine, settings, key, hour + timedelta(seconds=5))
            return {"plan": plan, "version": version, "idle": idle, "due": due, "again": again}
        finally:
            await engine.dispose()


async def _plan(conn: Any) -> str:
    rows = await conn.execute(
        sa.text(
            "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE next_run_at <= '2000-01-01' "
            "AND status = 'enabled' AND cron_expr IS NOT NULL ORDER BY next_run_at, id LIMIT 500"
        )
    )
    return " | ".join(str(r[-1]) for r in rows)


def section(tasks: int, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        MARK_START,
        f"## Cron scheduler (`task.fire_schedules`), {tasks:,} scheduled tasks — "
        "`bench/bench_schedules.py`",
        "",
        f"{datetime.now().date()}, {machine()}, load average {os.getloadavg()[0]:.1f}.",
        "Databases: " + "; ".join(f"{b}: {r['version']}" for b, r in results.items()) + ".",
        f"Hourly tasks spread over the hour ({tasks // 60:,} at each minute; 10% disabled, none",
        "of them at minute 0, the one fired here), each targeting one node. One pass per row,",
        f"in its own transaction, as the job runs it (at most {service.SCHEDULE_BATCH} fires a",
        "pass): wall time and statements sent.",
        "",
        "| pass | " + " | ".join(f"{b} fired | {b} ms | {b} statements" for b in results) + " |",
        "|---|" + "---|---|---|" * len(results),
    ]
    for name, label in (
        ("idle", "nothing due"),
        ("due", "a minute's tasks due"),
        ("again", "next pass: that minute's remaining tasks"),
    ):
        cells = []
        for r in results.values():
            fired, ms, statements = r[name]
            cells += [f"{fired:,}", f"{ms:.0f}", f"{statements}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Plans of the due-task query:", ""]
    lines += [f"- {b}: {r['plan']}" for b, r in results.items()]
    lines += [MARK_END, ""]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="mysql,postgres,sqlite")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--write", type=Path, help="update this file's scheduler section")
    args = parser.parse_args()
    results = {b: await run(b, args.tasks) for b in args.backends.split(",")}
    text = section(args.tasks, results)
    print(text)
    if args.write:
        write_section(args.write, "bench_schedules", text)


if __name__ == "__main__":
    asyncio.run(main())
