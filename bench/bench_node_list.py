"""GET /api/v1/nodes over a 50,000-node fleet on MariaDB and PostgreSQL.

Seeds its own database (`opscaffold_bench`, dropped and re-created) with batched inserts:
groups (region > datacenter > rack), nodes, their tags and labels (JSON columns and side
tables), agents and latest metrics. Then it times the list through the ASGI app (httpx
ASGITransport, logged in as admin, no network) for each filter: warm-up, then N requests one
after another; and prints the plans of the filtered queries.

    .venv/bin/python bench/bench_node_list.py [--backends mysql,postgres] [--requests 200]
                                              [--write bench/RESULTS.md]

Needs MariaDB (root, no password) on 127.0.0.1:3306 and PostgreSQL (postgres, trust) on
127.0.0.1:5432, as the test suite does. Redis is not used: sessions are checked in process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from common import (
    explain,
    machine,
    markers,
    recreate_database,
    server_version,
    write_section,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.logging import configure as configure_logging
from opscaffold.manager.models import (
    Agent,
    Node,
    NodeGroup,
    NodeLabel,
    NodeMetricLatest,
    NodeTag,
)
from opscaffold.manager.node import repository as node_repository
from opscaffold.manager.node.tree import GroupTree
from opscaffold.manager.runtime import Runtime

DB_NAME = "opscaffold_bench"
NODES = 50_000
BATCH = 2_000
PAGE_SIZE = 50
WARMUP = 20
PASSWORD = "Bench-Passw0rd!x"
REGIONS, DATACENTERS, RACKS = 5, 4, 10  # per region, per datacenter: 225 groups
TAGS = {"web": 0.30, "db": 0.10, "cache": 0.10, "batch": 0.15, "edge": 0.10, "gpu": 0.05}
TEAMS = [f"team-{n}" for n in ("payments", "search", "ads", "infra", "data", "ml", "web", "ops")]
NOTES = [
    "Reading the figures:",
    "",
    "- status, group, tag and label: each count finds its rows through the index named in its",
    "  plan (PostgreSQL hash-joins the tag and label index hits against a scan of `nodes`); the",
    "  page (default sort: id) walks the primary key, or joins the side table's index, and stops",
    "  after one page. A group filter is one `IN` over the group's subtree, walked in memory.",
    "- keyword: a substring (`LIKE '%…%'`) cannot use a B-tree index, so the count and the page",
    "  each scan all nodes. Case is folded only for a keyword with letters (ILIKE costs about",
    "  three LIKEs on PostgreSQL), and the page picks its ids before reading rows, so MariaDB does",
    "  not read every row's JSON columns while filtering (its page query for `1234`, timed alone:",
    "  ~70 ms before, ~25 ms after). An index-driven search needs a trigram index (PostgreSQL",
    "  pg_trgm): a schema change, not made.",
    "- sort=-last_heartbeat: `nodes.last_heartbeat` has no index in the schema, so this is a top-N",
    "  sort over every node; an index on it would serve this sort and the offline detector.",
    "- The machine was shared with other test runs while measuring; the p99 column carries that.",
]
MARK_START, MARK_END = markers("bench_node_list")


def settings_for(backend: str, data_dir: str) -> Settings:
    env = {
        "OPS_DATA_DIR": data_dir,
        "OPS_LOG__LEVEL": "warning",
        "OPS_ADMIN_PASSWORD": PASSWORD,
        "OPS_RATE_LIMIT__ENABLED": "false",  # 1,500 requests a minute from one user
        "OPS_DATABASE__DRIVER": backend,
        "OPS_DATABASE__HOST": "127.0.0.1",
        "OPS_DATABASE__USER": "root" if backend == "mysql" else "postgres",
        "OPS_DATABASE__NAME": DB_NAME,
    }
    return load_settings(None, env)


# -- seeding ------------------------------------------------------------------------------
@dataclass
class Fleet:
    region_ids: list[int]
    rack_ids: list[int]


def group_rows() -> tuple[list[dict[str, Any]], Fleet]:
    rows: list[dict[str, Any]] = []
    regions, racks = [], []
    for r in range(REGIONS):
        region = len(rows) + 1
        regions.append(region)
        rows.append({"id": region, "name": f"region-{r}", "parent_id": None, "sort_order": r})
        for d in range(DATACENTERS):
            dc = len(rows) + 1
            rows.append({"id": dc, "name": f"dc-{r}{d}", "parent_id": region, "sort_order": d})
            for k in range(RACKS):
                rack = len(rows) + 1
                racks.append(rack)
                rows.append(
                    {"id": rack, "name": f"rack-{r}{d}{k}", "parent_id": dc, "sort_order": k}
                )
    return rows, Fleet(regions, racks)


def node_batch(
    first: int, count: int, fleet: Fleet, rng: random.Random, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    nodes, tags, labels, agents, latest = [], [], [], [], []
    for node_id in range(first, first + count):
        status = rng.choices(["online", "offline", "unknown"], [90, 8, 2])[0]
        node_tags = [t for t, share in TAGS.items() if rng.random() < share]
        node_labels = {
            "env": rng.choices(["prod", "staging", "dev"], [70, 20, 10])[0],
            "tier": rng.choice(["frontend", "backend", "data"]),
            "zone": f"z{rng.randint(1, 6)}",
            "team": rng.choice(TEAMS),
        }
        seen = now - timedelta(
            seconds=rng.randint(0, 30) if status == "online" else rng.randint(90, 86_400)
        )
        nodes.append(
            {
                "id": node_id,
                "uuid": f"00000000-0000-4000-8000-{node_id:012d}",
                "hostname": f"{node_labels['tier'][:4]}-{node_id:05d}.example.net",
                "ip": f"10.{node_id >> 16}.{(node_id >> 8) & 255}.{node_id & 255}",
                "port": 9100,
                "group_id": fleet.rack_ids[node_id % len(fleet.rack_ids)],
                "os": "linux",
                "arch": "amd64",
                "kernel_version": "6.1.0-18-amd64",
                "daemon_version": "1.4.2",
                "cpu_cores": rng.choice([4, 8, 16, 32]),
                "memory_total": rng.choice([16, 32, 64]) << 30,
                "disk_total": 512 << 30,
                "status": status,
                "last_heartbeat": None if status == "unknown" else seen,
                "tags": node_tags,
                "labels": node_labels,
                "created_at": now - timedelta(days=30),
                "updated_at": now,
            }
        )
        tags += [{"node_id": node_id, "tag": t} for t in node_tags]
        labels += [{"node_id": node_id, "key": k, "value": v} for k, v in node_labels.items()]
        agents.append(
            {
                "node_id": node_id,
                "version": "1.4.2",
                "status": "running",
                "pid": 1000 + node_id % 30_000,
                "cpu_usage": 1.5,
                "memory_usage": 52_000_000,
                "start_time": now - timedelta(days=2),
                "restart_count": 0,
                "updated_at": seen,
            }
        )
        latest.append(
            {
                "node_id": node_id,
                "cpu_usage": round(rng.random() * 100, 2),
                "memory_usage": round(rng.random() * 100, 2),
                "memory_used": 8 << 30,
                "disk_usage": 40.0,
                "disk_used": 200 << 30,
                "network_rx": 1000,
                "network_tx": 800,
                "load_avg_1": 0.5,
                "load_avg_5": 0.4,
                "load_avg_15": 0.3,
                "process_count": 180,
                "tcp_connections": 40,
                "timestamp": seen,
            }
        )
    return {
        "nodes": nodes,
        "node_tags": tags,
        "node_labels": labels,
        "agents": agents,
        "latest": latest,
    }


async def seed(engine: AsyncEngine) -> Fleet:
    rng = random.Random(42)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    groups, fleet = group_rows()
    tables = {
        "nodes": Node,
        "node_tags": NodeTag,
        "node_labels": NodeLabel,
        "agents": Agent,
        "latest": NodeMetricLatest,
    }
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(NodeGroup), [{**g, "created_at": now, "updated_at": now} for g in groups]
        )
    for first in range(1, NODES + 1, BATCH):
        batch = node_batch(first, min(BATCH, NODES + 1 - first), fleet, rng, now)
        async with engine.begin() as conn:
            for name, model in tables.items():  # parents first: the side tables refer to nodes
                await conn.execute(sa.insert(model), batch[name])
    async with engine.connect() as conn:
        await analyze(conn)
    return fleet


async def analyze(conn: AsyncConnection) -> None:
    names = ["nodes", "node_groups", "node_tags", "node_labels", "agents", "node_metrics_latest"]
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("ANALYZE " + ", ".join(names)))
        await conn.commit()
    else:
        await conn.execute(sa.text("ANALYZE TABLE " + ", ".join(names)))


# -- timing -------------------------------------------------------------------------------
def scenarios(fleet: Fleet) -> dict[str, dict[str, Any]]:
    return {
        "no filter": {},
        "status=offline": {"status": "offline"},
        "group (region, 45 sub-groups)": {"group_id": fleet.region_ids[1]},
        "tag gpu": {"tags": "gpu"},
        "label team=team-payments": {"label": "team=team-payments"},
        "keyword 1234 (substring)": {"keyword": "1234"},
        "keyword ACK-0042 (substring, any case)": {"keyword": "ACK-0042"},
        "sort=-last_heartbeat": {"sort": "-last_heartbeat"},
    }


@dataclass
class Timing:
    total: int
    p50_ms: float
    p99_ms: float


async def time_requests(
    http: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any], n: int
) -> Timing:
    query = {"page_size": PAGE_SIZE, **params}
    for _ in range(WARMUP):
        response = await http.get("/api/v1/nodes", params=query, headers=headers)
        assert response.status_code == 200, response.text
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await http.get("/api/v1/nodes", params=query, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    samples.sort()
    p99 = samples[max(0, int(len(samples) * 0.99 + 0.5) - 1)]
    return Timing(response.json()["data"]["total"], statistics.median(samples), p99)


# -- plans --------------------------------------------------------------------------------
async def plans(engine: AsyncEngine, fleet: Fleet) -> dict[str, list[str]]:
    """EXPLAIN of the count and page queries the list runs for each indexed filter."""
    async with engine.connect() as conn:
        edges = [
            (g, p) for g, p in await conn.execute(sa.select(NodeGroup.id, NodeGroup.parent_id))
        ]
        subtree = GroupTree(edges).subtree(fleet.region_ids[1])
        filters = {
            "status": node_repository.has_status("offline"),
            "group": node_repository.in_groups(subtree),
            "tag": node_repository.has_tag("gpu"),
            "label": node_repository.has_label("team", "team-payments"),
        }
        found = {}
        for name, condition in filters.items():
            count = sa.select(sa.func.count()).select_from(Node).where(condition)
            page = (
                sa.select(Node.id)
                .where(condition)
                .order_by(*node_repository.order_by("id"))
                .limit(PAGE_SIZE)
            )
            found[name] = [await explain(conn, count), await explain(conn, page)]
        return found


# -- one backend --------------------------------------------------------------------------
async def run_backend(backend: str, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = settings_for(backend, data_dir)
        configure_logging(settings.log)  # warnings only: a log line per request would be timed
        started = time.perf_counter()
        await recreate_database(settings)
        await asyncio.to_thread(migrate.upgrade, settings)
        runtime = Runtime.build(settings)
        fleet = await seed(runtime.engine)
        seeded_s = time.perf_counter() - started
        print(f"[{backend}] seeded {NODES} nodes in {seeded_s:.1f}s", flush=True)
        app = create_app(settings, runtime=runtime)
        results: dict[str, Timing] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                login = await http.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
                )
                headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
                for name, params in scenarios(fleet).items():
                    results[name] = await time_requests(http, headers, params, requests)
                    t = results[name]
                    line = f"total={t.total:6} p50={t.p50_ms:7.2f} ms p99={t.p99_ms:7.2f} ms"
                    print(f"[{backend}] {name:34} {line}", flush=True)
        explained = await plans(runtime.engine, fleet)
        version = await server_version(runtime.engine)
        await runtime.close()
        return {
            "backend": backend,
            "version": version,
            "seed_s": seeded_s,
            "results": results,
            "plans": explained,
        }


# -- report -------------------------------------------------------------------------------
def report(runs: list[dict[str, Any]], requests: int) -> str:
    names = list(runs[0]["results"])
    head = (
        "| filter | matches | "
        + " | ".join(f"{r['backend']} p50 | {r['backend']} p99" for r in runs)
        + " |"
    )
    lines = [
        MARK_START,
        "## Node list (`GET /api/v1/nodes`), 50,000 nodes — `bench/bench_node_list.py`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {machine()}.",
        "Databases: "
        + "; ".join(f"{r['backend']}: {r['version']} (seeded in {r['seed_s']:.0f} s)" for r in runs)
        + ".",
        f"Fleet: {NODES:,} nodes in 225 groups (5 regions > 20 datacenters > 200 racks),",
        "~0.8 tags and 4 labels per node (JSON columns and side tables), an agent and a",
        f"latest-metrics row each. Each row: {WARMUP} warm-up requests, then {requests} sequential",
        f"requests through the ASGI app (no network), page_size={PAGE_SIZE}, logged in as admin;",
        "latency in ms as the client sees it (auth, count, page, groups and agents, JSON).",
        "",
        head,
        "|" + "---|" * (2 + 2 * len(runs)),
    ]
    for name in names:
        cells = [f"{r['results'][name].p50_ms:.1f} | {r['results'][name].p99_ms:.1f}" for r in runs]
        lines.append(f"| {name} | {runs[0]['results'][name].total:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Plans of the filtered queries (EXPLAIN, summarized; first the count, then the page):",
        "",
    ]
    for run in runs:
        for name, (count, page) in run["plans"].items():
            lines.append(f"- {run['backend']}, {name}: count: {count}")
            lines.append(f"  page: {page}")
    lines += ["", *NOTES, MARK_END]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="mysql,postgres")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--write", type=Path, help="update this file's node-list section")
    args = parser.parse_args()
    runs = [await run_backend(b, args.requests) for b in args.backends.split(",")]
    section = report(runs, args.requests)
    print(section)
    if args.write:
        write_section(args.write, "bench_node_list", section)
    print(
        json.dumps({r["backend"]: {k: v.__dict__ for k, v in r["results"].items()} for r in runs})
    )


if __name__ == "__main__":
    asyncio.run(main())
