"""The alert evaluator (`alert.evaluate`) over a 50,000-node fleet with twenty rules.

Seeds its own database (`opscaffold_bench_alerts`, dropped and re-created): groups, nodes (5%
offline, 10% tagged `gpu`), agents (2% stopped) and one latest-metrics row per node. Then it
runs evaluations at chosen times, as the job would, and reports each one's wall time, the
statements it sent and what it did: the first (conditions go pending, duration-0 rules fire),
a steady one (nothing changes), the one where the metric rules' durations are over (firing),
another steady one, and one after every node's metrics dropped (resolving).

    .venv/bin/python bench/bench_alerts.py [--backends mysql,postgres,sqlite] [--nodes 50000]
                                           [--write bench/RESULTS.md]

Needs MariaDB (root, no password) on 127.0.0.1:3306 and PostgreSQL (postgres, trust) on
127.0.0.1:5432 for those backends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import machine, markers, recreate_database, server_version, write_section
from sqlalchemy.ext.asyncio import AsyncEngine

from opscaffold.manager import migrate
from opscaffold.manager.alert import evaluator
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.db import create_engine, session_factory, transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import (
    Agent,
    AlertRule,
    Node,
    NodeGroup,
    NodeMetricLatest,
    NodeTag,
)

SLOT = os.environ.get("OPS_TEST_SLOT", "0")
DB_NAME = "opscaffold_bench_alerts" + ("" if SLOT == "0" else f"_s{SLOT}")
BATCH = 2_000
STALE_AFTER = timedelta(minutes=5)
MARK_START, MARK_END = markers("bench_alerts")


def settings_for(backend: str, data_dir: str) -> Settings:
    env = {"OPS_DATA_DIR": data_dir, "OPS_LOG__LEVEL": "warning"}
    if backend != "sqlite":
        env |= {
            "OPS_DATABASE__DRIVER": backend,
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__USER": "root" if backend == "mysql" else "postgres",
            "OPS_DATABASE__NAME": DB_NAME,
        }
    return load_settings(None, env)


async def seed(engine: AsyncEngine, nodes: int, now: datetime) -> list[int]:
    """Groups (2 regions > 5 racks each), nodes, tags, agents and latest metrics; returns
    the region ids."""
    rng = random.Random(7)
    async with engine.begin() as conn:
        regions = []
        for r in range(2):
            result = await conn.execute(sa.insert(NodeGroup).values(name=f"region-{r}"))
            regions.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
        racks = []
        for region in regions:
            for k in range(5):
                result = await conn.execute(
                    sa.insert(NodeGroup).values(name=f"rack-{region}-{k}", parent_id=region)
                )
                racks.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
    for start in range(0, nodes, BATCH):
        ids = range(start + 1, min(start + BATCH, nodes) + 1)
        node_rows, tag_rows, agent_rows, metric_rows = [], [], [], []
        for i in ids:
            gpu = i % 10 == 0
            node_rows.append(
                {
                    "id": i,
                    "uuid": f"00000000-0000-4000-8000-{i:012d}",
                    "hostname": f"node-{i:06d}",
                    "ip": "10.0.0.1",
                    "group_id": racks[i % len(racks)],
                    "status": "offline" if i % 20 == 0 else "online",
                    "tags": ["gpu"] if gpu else [],
                    "last_heartbeat": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if gpu:
                tag_rows.append({"node_id": i, "tag": "gpu"})
            agent_rows.append(
                {"node_id": i, "status": "stopped" if i % 50 == 0 else "running", "updated_at": now}
            )
            metric_rows.append(
                {
                    "node_id": i,
                    "timestamp": now,
                    "cpu_usage": round(rng.uniform(0, 100), 2),
                    "memory_usage": round(rng.uniform(0, 100), 2),
                    "disk_usage": round(rng.uniform(0, 100), 2),
                    "load_avg_1": round(rng.uniform(0, 8), 2),
                }
            )
        async with engine.begin() as conn:
            await conn.execute(sa.insert(Node), node_rows)
            if tag_rows:
                await conn.execute(sa.insert(NodeTag), tag_rows)
            await conn.execute(sa.insert(Agent), agent_rows)
            await conn.execute(sa.insert(NodeMetricLatest), metric_rows)
    return regions


RULES = 20


def rules(regions: list[int]) -> list[dict[str, Any]]:
    # Every row names every column: an executemany takes its columns from the first row.
    base = {
        "severity": "warning",
        "status": "enabled",
        "created_by": 1,
        "target_type": "all",
        "target_value": None,
    }
    numeric = [
        ("cpu_usage", "gt", 90, {}),
        ("cpu_usage", "gte", 80, {}),
        ("cpu_usage", "lt", 5, {}),
        ("memory_usage", "gt", 85, {"target_type": "group", "target_value": [str(regions[0])]}),
        ("disk_usage", "gt", 80, {"target_type": "tag", "target_value": ["gpu"]}),
        ("load_avg_1", "gt", 6, {}),
        ("load_avg_1", "gt", 7, {"target_type": "group", "target_value": [str(regions[1])]}),
        ("memory_usage", "lte", 2, {}),
        # Ten more, as a real rule book has: most hold nowhere, each is still evaluated.
        ("cpu_usage", "gt", 95, {"target_type": "tag", "target_value": ["gpu"]}),
        ("memory_usage", "gt", 95, {}),
        ("disk_usage", "gt", 95, {"target_type": "group", "target_value": [str(regions[1])]}),
        ("disk_usage", "lt", 1, {}),
        ("load_avg_5", "gt", 8, {}),
        ("load_avg_15", "gt", 8, {}),
        ("process_count", "gt", 2000, {}),
        ("tcp_connections", "gt", 5000, {}),
        ("network_rx", "gt", 1_000_000_000, {}),
        ("network_tx", "gt", 1_000_000_000, {}),
    ]
    found = [
        base
        | {"name": f"{m} {o} {t}", "metric": m, "operator": o, "threshold": t, "duration": 60}
        | extra
        for m, o, t, extra in numeric
    ]
    for metric in ("node_offline", "agent_not_running"):
        found.append(
            base
            | {"name": metric, "metric": metric, "operator": "eq", "threshold": 1, "duration": 0}
        )
    return found


async def run_backend(backend: str, nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = settings_for(backend, data_dir)
        if backend != "sqlite":
            await recreate_database(settings)
        await asyncio.to_thread(migrate.upgrade, settings)
        engine = create_engine(settings.database)
        sessions = session_factory(engine)
        t0 = utcnow()
        started = time.perf_counter()
        regions = await seed(engine, nodes, t0)
        seeded_s = time.perf_counter() - started
        async with engine.begin() as conn:
            await conn.execute(sa.insert(AlertRule), rules(regions))
        print(f"[{backend}] seeded {nodes} nodes in {seeded_s:.1f}s", flush=True)

        statements: list[str] = []
        sa.event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_a: statements.append(statement),
        )
        cycles = []
        steps = [
            ("first: pending, duration-0 rules fire", 0),
            ("steady: nothing changes", 30),
            ("durations over: metric rules fire", 60),
            ("steady, many firing", 90),
            ("metrics dropped: resolving", 120),
        ]
        for name, offset in steps:
            if offset == 120:
                async with engine.begin() as conn:
                    await conn.execute(
                        sa.update(NodeMetricLatest).values(
                            cpu_usage=50, memory_usage=50, disk_usage=10, load_avg_1=1
                        )
                    )
            statements.clear()
            began = time.perf_counter()
            async with transaction(sessions) as session:
                result = await evaluator.evaluate(
                    session, t0 + timedelta(seconds=offset), STALE_AFTER
                )
            elapsed_ms = (time.perf_counter() - began) * 1000
            fired = sum(1 for t in result.transitions if t.to == "firing")
            resolved = len(result.transitions) - fired
            cycles.append(
                {
                    "name": name,
                    "ms": elapsed_ms,
                    "statements": len(statements),
                    "holding": result.holding,
                    "pending": result.pending,
                    "fired": fired,
                    "resolved": resolved,
                }
            )
            print(f"[{backend}] {name:40} {elapsed_ms:8.0f} ms {cycles[-1]}", flush=True)
        version = "SQLite" if backend == "sqlite" else await server_version(engine)
        await engine.dispose()
        return {"backend": backend, "version": version, "seed_s": seeded_s, "cycles": cycles}


def report(runs: list[dict[str, Any]], nodes: int) -> str:
    lines = [
        MARK_START,
        f"## Alert evaluation (`alert.evaluate`), {nodes:,} nodes, {RULES} rules — "
        "`bench/bench_alerts.py`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {machine()}.",
        "Databases: " + "; ".join(f"{r['backend']}: {r['version']}" for r in runs) + ".",
        f"Rules: {RULES - 2} on metrics (thresholds over all nodes, a region's subtree, a tag;",
        "duration 60 s) and node_offline, agent_not_running (duration 0). 5% of nodes offline,",
        "2% with a stopped agent. One evaluation per row, in its own transaction, as the job",
        "runs it; wall time and the statements sent (a batch of up to 500 rows or keys is one).",
        "",
        "| evaluation | holding | pending | fired | resolved | "
        + " | ".join(f"{r['backend']} ms | {r['backend']} statements" for r in runs)
        + " |",
        "|" + "---|" * (5 + 2 * len(runs)),
    ]
    for i, cycle in enumerate(runs[0]["cycles"]):
        cells = [f"{r['cycles'][i]['ms']:.0f} | {r['cycles'][i]['statements']}" for r in runs]
        lines.append(
            f"| {cycle['name']} | {cycle['holding']:,} | {cycle['pending']:,} | "
            f"{cycle['fired']:,} | {cycle['resolved']:,} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Reading the figures: a steady evaluation is a fixed number of statements whatever the",
        "fleet (lock, rules, groups, one UNION over the rules, the open conditions); the time",
        "goes to the database evaluating each rule over the latest metrics and to reading back",
        "the (rule, node) pairs that hold. The fleet is deliberately noisy (see `holding`); an",
        "evaluation that fires or resolves tens of thousands of alerts at once writes them in",
        "batches of 500 rows, with the number of statements growing by batch.",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="mysql,postgres,sqlite")
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--write", type=Path, help="update this file's alert section")
    args = parser.parse_args()
    runs = [await run_backend(b, args.nodes) for b in args.backends.split(",")]
    section = report(runs, args.nodes)
    print(section)
    if args.write:
        write_section(args.write, "bench_alerts", section)


if __name__ == "__main__":
    asyncio.run(main())
