"""Rows that daemons (or other domains) would write, inserted directly with SQL.

Tests of the REST API use these for what no API route creates: nodes, agents, metrics, events,
credentials and commands. Side tables are filled here too, so a test never depends on the code
under test to arrange its data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.metric import partitions
from opscaffold.manager.models import (
    Agent,
    Node,
    NodeCommand,
    NodeCredential,
    NodeEvent,
    NodeGroup,
    NodeLabel,
    NodeMetric,
    NodeMetricLatest,
    NodeTag,
    node_metrics_5m,
)
from opscaffold.manager.node.schemas import tag_key
from tests.manager.conftest import Stack


async def add_group(stack: Stack, name: str, parent_id: int | None = None, sort: int = 0) -> int:
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(
            sa.insert(NodeGroup).values(name=name, parent_id=parent_id, sort_order=sort)
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def node_row(hostname: str, **values: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "uuid": str(uuid.uuid4()),
        "hostname": hostname,
        "ip": "10.0.0.1",
        "port": 9100,
        "status": "unknown",
        "os": "linux",
        "arch": "amd64",
        "created_at": now,
        "updated_at": now,
        **values,
    }


async def add_node(
    stack: Stack,
    hostname: str,
    *,
    tags: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    **values: Any,
) -> int:
    """One node with its tags and labels, in the JSON columns and the side tables alike."""
    row = node_row(hostname, tags=list(tags), labels=dict(labels or {}), **values)
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(sa.insert(Node).values(**row))
        node_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        if tags:
            rows = [{"node_id": node_id, "tag": tag_key(t)} for t in tags]
            await conn.execute(sa.insert(NodeTag), rows)
        if labels:
            rows = [{"node_id": node_id, "key": k, "value": v} for k, v in labels.items()]
            await conn.execute(sa.insert(NodeLabel), rows)
    return node_id


async def add_agent(stack: Stack, node_id: int, **values: Any) -> None:
    row = {"node_id": node_id, "version": "1.0.0", "status": "running", "pid": 4242, **values}
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(Agent).values(updated_at=utcnow(), **row))


def metric_values(i: int) -> dict[str, Any]:
    """Deterministic, varied values for the i-th report."""
    return {
        "cpu_usage": round((i * 7.31) % 100, 2),
        "memory_usage": round((i * 3.17) % 100, 2),
        "memory_used": 1_000_000 + i * 1_013,
        "disk_usage": round((i * 0.37) % 100, 2),
        "disk_used": 50_000_000 + i * 97,
        "network_rx": (i * 131) % 10_000,
        "network_tx": (i * 71) % 5_000,
        "load_avg_1": round((i % 400) / 100, 2),
        "load_avg_5": round((i % 300) / 100, 2),
        "load_avg_15": round((i % 200) / 100, 2),
        "process_count": 100 + i % 50,
        "tcp_connections": 10 + i % 20,
    }


async def add_metrics(
    stack: Stack,
    node_id: int,
    start: datetime,
    step: timedelta,
    count: int,
    *,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """`count` reports from `start`, one every `step`; returns the rows inserted."""
    rows = [
        {"node_id": node_id, "timestamp": start + i * step, **metric_values(offset + i)}
        for i in range(count)
    ]
    await ensure_partitions(stack, rows[0]["timestamp"], rows[-1]["timestamp"])
    async with stack.runtime.engine.begin() as conn:
        for part in range(0, len(rows), 1000):
            await conn.execute(sa.insert(NodeMetric), rows[part : part + 1000])
    return rows


async def ensure_partitions(stack: Stack, first: datetime, last: datetime) -> None:
    """Day partitions for [first, last] (PostgreSQL has no catch-all to write into)."""
    async with stack.runtime.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in partitions.PARTITIONED:
            await auto.run_sync(partitions.ensure_days, table, first.date(), last.date())


async def add_rollups(
    stack: Stack, node_id: int, start: datetime, count: int, samples: int = 5
) -> list[dict[str, Any]]:
    """`count` consecutive 5-minute rollups from `start` (a bucket start)."""
    rows = []
    for i in range(count):
        values = metric_values(i)
        rows.append(
            {
                "node_id": node_id,
                "bucket": start + timedelta(minutes=5 * i),
                "samples": samples + i % 3,
                **{f"{k}_avg": v for k, v in values.items()},
                **{f"{k}_max": v for k, v in values.items()},
            }
        )
    await ensure_partitions(stack, rows[0]["bucket"], rows[-1]["bucket"])
    async with stack.runtime.engine.begin() as conn:
        for part in range(0, len(rows), 1000):
            await conn.execute(sa.insert(node_metrics_5m), rows[part : part + 1000])
    return rows


async def add_latest(stack: Stack, node_id: int, at: datetime) -> None:
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(NodeMetricLatest).values(node_id=node_id, timestamp=at, **metric_values(1))
        )


async def add_event(stack: Stack, node_id: int, to_status: str, at: datetime) -> None:
    row = {"node_id": node_id, "event": to_status, "to_status": to_status, "at": at}
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(NodeEvent).values(**row))


async def add_credential(stack: Stack, node_id: int) -> None:
    digest = uuid.uuid4().hex * 2
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(NodeCredential).values(
                node_id=node_id, token_hash=digest, created_at=utcnow()
            )
        )


async def add_command(stack: Stack, node_id: int, type: str = "ping") -> None:
    now = utcnow()
    row = {
        "id": str(uuid.uuid4()),
        "node_id": node_id,
        "type": type,
        "payload": {},
        "state": "pending",
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
    }
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(NodeCommand).values(**row))


async def count_rows(stack: Stack, table: Any, **where: Any) -> int:
    """Rows of `table` (a model) whose columns equal the given values."""
    conditions = [getattr(table, column) == value for column, value in where.items()]
    stmt = sa.select(sa.func.count()).select_from(table).where(*conditions)
    async with stack.runtime.engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def commands(stack: Stack, type: str = "config") -> list[dict[str, Any]]:
    """Commands of a type in the outbox, as mappings of id, node_id, payload, created_by."""
    stmt = (
        sa.select(NodeCommand.id, NodeCommand.node_id, NodeCommand.payload, NodeCommand.created_by)
        .where(NodeCommand.type == type)
        .order_by(NodeCommand.node_id, NodeCommand.created_at)
    )
    async with stack.runtime.engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(stmt)]


@contextmanager
def counting_statements(stack: Stack, *, this_task_only: bool = False) -> Iterator[list[str]]:
    """Collect every SQL statement the app sends while the block runs; `this_task_only`:
    only those of the calling task, not of the app's jobs running meanwhile."""
    statements: list[str] = []
    owner = asyncio.current_task() if this_task_only else None

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if owner is None or asyncio.current_task() is owner:
            statements.append(statement)

    engine = stack.runtime.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
