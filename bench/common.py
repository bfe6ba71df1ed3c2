"""What the benchmarks share: the machine's description, query plans, and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from opscaffold.manager.config import Settings
from opscaffold.manager.db import database_url

PLAN_NODE = re.compile(
    r"^(Index|Bitmap|Seq|Hash|Nested|Merge|Aggregate|GroupAggregate|HashAggregate|Limit|Sort|"
    r"Unique|Gather|Append|Finalize|Partial|Subquery)"
)


async def recreate_database(settings: Settings) -> None:
    """Drop and create the benchmark's own database (MySQL or PostgreSQL)."""
    mysql = settings.database.driver == "mysql"
    name = settings.database.name
    admin = database_url(settings.database, name="mysql" if mysql else "postgres")
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    quoted = f"`{name}`" if mysql else f'"{name}"'
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
        await conn.execute(
            sa.text(f"CREATE DATABASE {quoted}" + (" CHARACTER SET utf8mb4" if mysql else ""))
        )
    await engine.dispose()


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({model}), {system}, Python {platform.python_version()}"


async def server_version(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        value = (await conn.execute(sa.text("SELECT version()"))).scalar_one()
    return str(value).split(" on ")[0].split(",")[0]


async def explain(conn: AsyncConnection, stmt: Any) -> str:
    """A one-line summary of the statement's plan: each step, with the index it uses."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(sa.text("EXPLAIN " + sql))
        return summarize_pg([r[0] for r in rows])
    rows = await conn.execute(sa.text("EXPLAIN PARTITIONS " + sql))
    return summarize_mysql([dict(r._mapping) for r in rows])


def summarize_pg(lines: Sequence[str]) -> str:
    """The plan's nodes, each scan with its index (costs and conditions dropped)."""
    steps = []
    for line in lines:
        text = re.sub(r"\s+\(cost=.*\)$", "", line.strip().lstrip("-> ").strip())
        if PLAN_NODE.match(text) and "Cond:" not in text:
            steps.append(text)
    return " → ".join(steps)


def summarize_mysql(rows: Sequence[dict[str, Any]]) -> str:
    parts = []
    for row in rows:
        key = row.get("key") or "no index"
        extra = f"; {row['Extra']}" if row.get("Extra") else ""
        where = f" [partitions {row['partitions']}]" if row.get("partitions") else ""
        parts.append(
            f"{row.get('table')}{where}: {row.get('type')} via {key} (~{row.get('rows')} rows)"
            f"{extra}"
        )
    return " | ".join(parts)


def write_section(path: Path, name: str, section: str) -> None:
    """Replace (or append) the section between `<!-- name:start -->` and `<!-- name:end -->`."""
    start, end = markers(name)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"
