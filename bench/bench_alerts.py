"""The alert evaluator (`alert.evaluate`) over a 50,000-node fleet with twenty rules.

Seeds its own database (`opscaffold_bench_alerts`, dropped and re-created): groups, nodes (5%
offline, 10% tagged `gpu`), agents (2% stopped) and one latest-metrics row per node. Then it
runs evaluations at chosen times, as the job would, and reports each one's wall time, the
statements it sent and what it did: the first (conditions go pending, duration-0 rules fire),
a steady one (nothing changes), the one where the metric rules' durations are over (firing),
another steady one, and one after every node's metrics dropped (resolving).

    .venv/bin/python bench/bench_alerts.py [--backends mysql,postgres,sqlite] [--nodes 50000]
        [--repeat 3] [--against main] [--write bench/RESULTS.md]

Each run is a process of its own on a fresh database. `--against REV` also runs the Manager as
of that git revision (its `src/`, extracted to a temporary directory), the two builds taking
turns, so that a change is measured before and after on the same machine at the same time;
`--repeat N` runs each build N times and reports the medians.

Needs MariaDB (root, no password) on 127.0.0.1:3306 and PostgreSQL (postgres, trust) on
127.0.0.1:5432 for those backends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import machine, markers, recreate_database, server_version, write_section
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from opscaffold.manager import migrate
from opscaffold.manager.alert import evaluator
from opscaffold.manager.alert import service as alert_service
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
from opscaffold.manager.notification import service as notification_service

SLOT = os.environ.get("OPS_TEST_SLOT", "0")
DB_NAME = "opscaffold_bench_alerts" + ("" if SLOT == "0" else f"_s{SLOT}")
BATCH = 2_000
STALE_AFTER = timedelta(minutes=5)
MARK_START, MARK_END = markers("bench_alerts")
ROOT = Path(__file__).resolve().parent.parent
RESULT = "RESULT "


def settings_for(backend: str, data_dir: str) -> Settings:
    # A generous statement timeout: on a busy machine a mass write may take longer than the
    # Manager's default allows, and the benchmark measures rather than gives up.
    env = {
        "OPS_DATA_DIR": data_dir,
        "OPS_LOG__LEVEL": "warning",
        "OPS_DATABASE__STATEMENT_TIMEOUT": "300s",
    }
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


STEPS = [
    ("first: pending, duration-0 rules fire", 0),
    ("steady: nothing changes", 30),
    ("durations over: metric rules fire", 60),
    ("steady, many firing", 90),
    ("metrics dropped: resolving", 120),
]


async def run_backend(backend: str, nodes: int) -> dict[str, Any]:
    """Seed a fresh database and run the evaluations of STEPS, each as the job runs it."""
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
        await analyze(engine)
        print(f"[{backend}] seeded {nodes} nodes in {seeded_s:.1f}s", flush=True)

        statements: list[str] = []
        sa.event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_a: statements.append(statement),
        )
        cycles = []
        for name, offset in STEPS:
            if offset == 120:
                async with engine.begin() as conn:
                    await conn.execute(
                        sa.update(NodeMetricLatest).values(
                            cpu_usage=50, memory_usage=50, disk_usage=10, load_avg_1=1
                        )
                    )
            statements.clear()
            cycles.append(await run_job(sessions, t0 + timedelta(seconds=offset), statements))
            cycles[-1]["name"] = name
            print(f"[{backend}] {name:40} {cycles[-1]}", flush=True)
        version = "SQLite" if backend == "sqlite" else await server_version(engine)
        await engine.dispose()
        return {"backend": backend, "version": version, "seed_s": seeded_s, "cycles": cycles}


async def analyze(engine: AsyncEngine) -> None:
    """Fresh planner statistics, as a fleet that has been running has."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(sa.text("ANALYZE"))
        elif engine.dialect.name == "mysql":
            await conn.execute(sa.text("ANALYZE TABLE nodes, agents, node_metrics_latest"))


async def run_job(
    sessions: async_sessionmaker[AsyncSession], now: datetime, statements: list[str]
) -> dict[str, Any]:
    """What the `alert.evaluate` job does, in its one transaction: evaluate, then queue the
    notifications of what fired or resolved (the rules here name no channel). Besides wall
    time, the CPU it cost: this process's and the database server thread's that served it."""
    async with transaction(sessions) as session:
        server = await server_thread(session)
        statements.clear()
        cpu_before = time.process_time() + thread_cpu(server)
        began = time.perf_counter()
        result = await evaluator.evaluate(session, now, STALE_AFTER)
        evaluated_ms = (time.perf_counter() - began) * 1000
        notices = await alert_service.notices(session, result.transitions)
        await notification_service.enqueue(session, notices, now)
    job_ms = (time.perf_counter() - began) * 1000
    cpu_ms = (time.process_time() + thread_cpu(server) - cpu_before) * 1000
    fired = sum(1 for t in result.transitions if t.to == "firing")
    return {
        "evaluate_ms": evaluated_ms,
        "job_ms": job_ms,
        "cpu_ms": cpu_ms if server else None,
        "statements": len(statements),
        "holding": result.holding,
        "pending": result.pending,
        "fired": fired,
        "resolved": len(result.transitions) - fired,
    }


async def server_thread(session: AsyncSession) -> Path | None:
    """The /proc entry of the server thread or process serving this session (the databases
    run on this machine), to read the CPU time it spends; None for SQLite (in process)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        found = await session.scalar(sa.text("SELECT pg_backend_pid()"))
    elif dialect == "mysql":  # MariaDB names the OS thread of each connection
        found = await session.scalar(
            sa.text("SELECT TID FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
        )
    else:
        return None
    return Path(f"/proc/{found}/stat") if found else None


def thread_cpu(stat: Path | None) -> float:
    """User + system CPU seconds of a process or thread, from its /proc stat line."""
    if stat is None:
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- before and after, side by side -----------------------------------------------------------
def extract(rev: str, into: Path) -> Path:
    """The Manager's sources as of `rev` (a git revision of this repository), under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run_build(backend: str, nodes: int, src: Path | None) -> dict[str, Any]:
    """One run in a process of its own, importing the Manager from `src` (None: this tree)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--worker", backend, "--nodes", str(nodes)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{done.stdout}\n{done.stderr}")
    for line in done.stdout.splitlines():
        if not line.startswith(RESULT):
            print(line, flush=True)
    return json.loads(done.stdout.rsplit(RESULT, 1)[1])


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs of one build on one database, each cycle's times as the median of the runs."""
    merged = dict(runs[0], cycles=[dict(c) for c in runs[0]["cycles"]])
    for i, cycle in enumerate(merged["cycles"]):
        for key in ("evaluate_ms", "job_ms", "cpu_ms"):
            values = [run["cycles"][i][key] for run in runs]
            if None in values:
                continue
            cycle[key] = statistics.median(values)
            cycle[key + "_all"] = values
    return merged


def report(
    after: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]], options: dict[str, Any]
) -> str:
    nodes, repeat, against = options["nodes"], options["repeat"], options["against"]
    backends = list(after)
    lines = [
        MARK_START,
        f"## Alert evaluation (`alert.evaluate`), {nodes:,} nodes, {RULES} rules — "
        "`bench/bench_alerts.py`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {machine()}; load average {options['load_start']} at "
        f"the start, {options['load_end']} at the end",
        "(other work shared the machine: compare the columns of one table, not runs).",
        "Databases: " + "; ".join(f"{b}: {after[b]['version']}" for b in backends) + ".",
        f"Rules: {RULES - 2} on metrics (thresholds over all nodes, a region's subtree, a tag;",
        "duration 60 s) and node_offline, agent_not_running (duration 0). 5% of nodes offline,",
        "2% with a stopped agent. One evaluation per row, in its own transaction, as the job",
        "runs it: `evaluate` is the evaluator's wall time, `job` adds queuing the notifications",
        "and the commit; `job CPU` is the CPU the job cost, in the benchmark's process and in the",
        "database server's thread (or process) that served it: what the wall time comes down to",
        "on a machine with nothing else to do, but for commit waits. Each figure is the median of "
        + (f"{repeat} runs" if repeat > 1 else "one run")
        + (
            f", the builds taking turns (`{against}`, then this tree, on a fresh database each)."
            if before
            else "."
        ),
    ]
    for backend in backends:
        lines += ["", f"**{after[backend]['version']}**", ""]
        builds = ([("before", before[backend])] if before else []) + [("after", after[backend])]
        header = ["evaluation", "holding", "pending", "fired", "resolved"]
        for label, _ in builds:
            header += [
                f"{label}: evaluate ms",
                f"{label}: job ms",
                f"{label}: job CPU ms",
                f"{label}: statements",
            ]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, cycle in enumerate(after[backend]["cycles"]):
            cells = [
                cycle["name"],
                f"{cycle['holding']:,}",
                f"{cycle['pending']:,}",
                f"{cycle['fired']:,}",
                f"{cycle['resolved']:,}",
            ]
            for _, run in builds:
                c = run["cycles"][i]
                cpu = "n/a" if c["cpu_ms"] is None else f"{c['cpu_ms']:.0f}"
                cells += [
                    f"{c['evaluate_ms']:.0f}",
                    f"{c['job_ms']:.0f}",
                    cpu,
                    str(c["statements"]),
                ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [MARK_END]
    return "\n".join(lines) + "\n"


def load() -> str:
    return " / ".join(f"{n:.1f}" for n in os.getloadavg())


async def worker(backend: str, nodes: int) -> None:
    result = await run_backend(backend, nodes)
    print(RESULT + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="mysql,postgres,sqlite")
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per build and database")
    parser.add_argument("--against", help="also run this git revision's evaluator, in turns")
    parser.add_argument("--write", type=Path, help="update this file's alert section")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.nodes))
        return
    options = {"nodes": args.nodes, "repeat": args.repeat, "against": args.against}
    options["load_start"] = load()
    after: dict[str, list[dict[str, Any]]] = {}
    before: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old_src = extract(args.against, Path(tmp)) if args.against else None
        for _ in range(args.repeat):
            for backend in args.backends.split(","):
                if old_src is not None:
                    print(f"-- {args.against} on {backend}", flush=True)
                    before.setdefault(backend, []).append(run_build(backend, args.nodes, old_src))
                print(f"-- this tree on {backend}", flush=True)
                after.setdefault(backend, []).append(run_build(backend, args.nodes, None))
    options["load_end"] = load()
    section = report(
        {b: median_run(r) for b, r in after.items()},
        {b: median_run(r) for b, r in before.items()},
        options,
    )
    print(section)
    if args.write:
        write_section(args.write, "bench_alerts", section)


if __name__ == "__main__":
    main()
