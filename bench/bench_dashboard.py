"""GET /api/v1/system/dashboard over a 50,000-node fleet on MariaDB and PostgreSQL.

Seeds its own database (`opscaffold_bench_dashboard`, dropped and re-created) with the fleet of
bench_node_list.py (nodes, agents, tags, labels, latest metrics), plus alert rules, alerts
(firing and resolved, of every severity) and 24 hours of 5-minute fleet rollups. Then it
times the dashboard through the ASGI app (no network): warm-up, then N sequential requests;
and prints the plan of every statement one request runs (captured as it runs them).

    .venv/bin/python bench/bench_dashboard.py [--backends mysql,postgres] [--requests 200]
                                              [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench_node_list import NODES, PASSWORD, seed, settings_for
from common import (
    machine,
    markers,
    recreate_database,
    server_version,
    summarize_mysql,
    summarize_pg,
    write_section,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app
from opscaffold.manager.config import Settings
from opscaffold.manager.dashboard.cache import DashboardCache
from opscaffold.manager.logging import configure as configure_logging
from opscaffold.manager.metric.rollup import bucket_of
from opscaffold.manager.models import Alert, AlertRule
from opscaffold.manager.models.metric import FLEET, fleet_metrics_5m
from opscaffold.manager.runtime import Runtime

DB_NAME = "opscaffold_bench_dashboard"
RULES = 20
ALERTS = 20_000  # a month of a busy fleet's alerts
FIRING = 0.05
WARMUP = 20
DASHBOARD = "/api/v1/system/dashboard"
# computed: every request computes the figures; served: as configured by default, figures at
# most max_age old (dashboard/cache.py), so most requests read them from memory.
# Served requests come 100 ms apart, so that a run spans several refreshes.
CASES = {"computed": timedelta(microseconds=1), "served (max_age 5 s)": timedelta(seconds=5)}
PACE_S = {"computed": 0.0, "served (max_age 5 s)": 0.1}
MARK_START, MARK_END = markers("bench_dashboard")
LOAD = " / ".join(f"{n:.1f}" for n in os.getloadavg())
NOTES = [
    "Reading the figures: the node figures (status, running agents, agent and daemon versions)",
    "come from one grouped pass over `nodes` left-joined to `agents`; firing alerts by severity",
    "from the `status` index; the trend reads 288 fleet rollup rows by their index; the newest",
    "alerts walk the `fired_at` index and stop at ten. Nothing is read per node, but the node",
    "pass reads all 50,000 nodes and their agents, which is what a computed request costs (and",
    "what grows with the fleet). Served requests read figures at most `dashboard.max_age` old",
    "(5 s) from memory; one refresh at a time recomputes them, behind the requests.",
]


def dashboard_settings(backend: str, data_dir: str) -> Settings:
    settings = settings_for(backend, data_dir)
    settings.database.name = DB_NAME
    return settings


async def seed_alerts(engine: AsyncEngine, now: datetime) -> None:
    rng = random.Random(7)
    severities = ("critical", "warning", "info")
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(AlertRule),
            [
                {
                    "name": f"rule-{n}",
                    "metric": "cpu_usage",
                    "operator": "gt",
                    "threshold": 90,
                    "created_by": 1,
                }
                for n in range(RULES)
            ],
        )
        rows = []
        for n in range(ALERTS):
            firing = rng.random() < FIRING
            fired = now - timedelta(minutes=rng.randrange(30 * 24 * 60))
            rows.append(
                {
                    "rule_id": 1 + n % RULES,
                    "node_id": rng.randrange(1, NODES + 1),
                    "metric": "cpu_usage",
                    "current_value": 95.0,
                    "threshold": 90,
                    "severity": severities[n % 3],
                    "status": "firing" if firing else "resolved",
                    "fired_at": fired,
                    "resolved_at": None if firing else fired + timedelta(minutes=5),
                }
            )
        for first in range(0, len(rows), 2_000):
            await conn.execute(sa.insert(Alert), rows[first : first + 2_000])


async def seed_trend(engine: AsyncEngine, now: datetime) -> None:
    first = bucket_of(now - timedelta(hours=24))
    rows = []
    for n in range(288):
        values = {"cpu_usage": 20 + n % 50, "memory_usage": 40 + n % 30, "disk_usage": 55.0}
        rows.append(
            {
                "group_id": FLEET,
                "bucket": first + timedelta(minutes=5 * n),
                "nodes": NODES,
                "samples": NODES * 5,
                **{f"{k}_avg": v for k, v in values.items()},
                **{f"{k}_max": min(v * 1.5, 100) for k, v in values.items()},
            }
        )
    async with engine.begin() as conn:
        await conn.execute(sa.insert(fleet_metrics_5m), rows)


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and parameters) every statement run meanwhile sent to the database."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def plans(engine: AsyncEngine, statements: list[tuple[str, Any]]) -> list[str]:
    found = []
    async with engine.connect() as conn:
        for sql, parameters in statements:
            if not sql.lstrip().upper().startswith("SELECT") or "FROM users" in sql:
                continue  # the login's own lookups are not the dashboard's
            if conn.dialect.name == "postgresql":
                result = await conn.exec_driver_sql("EXPLAIN " + sql, parameters)
                found.append(summarize_pg([r[0] for r in result]))
            else:
                result = await conn.exec_driver_sql("EXPLAIN " + sql, parameters)
                found.append(summarize_mysql([dict(r._mapping) for r in result]))
    return found


async def run_backend(backend: str, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = dashboard_settings(backend, data_dir)
        configure_logging(settings.log)
        started = time.perf_counter()
        await recreate_database(settings)
        await asyncio.to_thread(migrate.upgrade, settings)
        runtime = Runtime.build(settings)
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        await seed(runtime.engine)
        await seed_alerts(runtime.engine, now)
        await seed_trend(runtime.engine, now)
        seeded_s = time.perf_counter() - started
        print(f"[{backend}] seeded in {seeded_s:.1f}s", flush=True)
        app = create_app(settings, runtime=runtime)
        timings: dict[str, list[float]] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                login = await http.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
                )
                headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
                for case, max_age in CASES.items():
                    runtime.dashboard = DashboardCache(runtime.sessions, max_age)
                    timings[case] = await time_requests(http, headers, requests, PACE_S[case])
                with captured(runtime.engine) as statements:
                    runtime.dashboard = DashboardCache(runtime.sessions, CASES["computed"])
                    one = await http.get(DASHBOARD, headers=headers)
                one.raise_for_status()
        data = one.json()["data"]
        explained = await plans(runtime.engine, statements)
        version = await server_version(runtime.engine)
        await runtime.close()
    result = {
        "backend": backend,
        "version": version,
        "seed_s": seeded_s,
        "timings": {case: percentiles(samples) for case, samples in timings.items()},
        "statements": len(statements),
        "plans": explained,
        "check": (data["total_nodes"], data["active_alerts"], len(data["resource_trend"])),
    }
    for case, (p50, p99) in result["timings"].items():
        print(f"[{backend}] {case}: p50={p50:.1f} ms p99={p99:.1f} ms", flush=True)
    return result


async def time_requests(
    http: httpx.AsyncClient, headers: dict[str, str], n: int, pace_s: float
) -> list[float]:
    for _ in range(WARMUP):
        (await http.get(DASHBOARD, headers=headers)).raise_for_status()
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        response = await http.get(DASHBOARD, headers=headers)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
        await asyncio.sleep(pace_s)
    return samples


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)]


def report(runs: list[dict[str, Any]], requests: int) -> str:
    lines = [
        MARK_START,
        "## Dashboard (`GET /api/v1/system/dashboard`), 50,000 nodes — `bench/bench_dashboard.py`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {machine()}; load average {LOAD} at the start",
        "(compare the rows of one run with each other rather than across runs).",
        f"Fleet: the node list's {NODES:,} nodes (agents, tags, labels, latest metrics), {RULES}",
        f"alert rules, {ALERTS:,} alerts over 30 days ({FIRING:.0%} firing), 24 h of fleet",
        f"rollups. {WARMUP} warm-up requests, then {requests} sequential requests through the",
        "ASGI app (no network), logged in as admin; latency as the client sees it. Served",
        f"requests come {PACE_S['served (max_age 5 s)'] * 1000:.0f} ms apart, so the run spans",
        "several background refreshes.",
        "",
        "| database | case | p50 ms | p99 ms | statements | nodes / firing / trend points |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        nodes, firing, points = run["check"]
        for case, (p50, p99) in run["timings"].items():
            lines.append(
                f"| {run['backend']} {run['version']} | {case} | {p50:.1f} | {p99:.1f} | "
                f"{run['statements']} | {nodes:,} / {firing:,} / {points} |"
            )
    lines += ["", "Plans of the statements one request runs (EXPLAIN, summarized):", ""]
    for run in runs:
        for plan in run["plans"]:
            lines.append(f"- {run['backend']}: {plan}")
    lines += ["", *NOTES, MARK_END]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="mysql,postgres")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--write", type=Path, help="update this file's dashboard section")
    args = parser.parse_args()
    runs = [await run_backend(b, args.requests) for b in args.backends.split(",")]
    section = report(runs, args.requests)
    print(section)
    if args.write:
        write_section(args.write, "bench_dashboard", section)


if __name__ == "__main__":
    asyncio.run(main())
