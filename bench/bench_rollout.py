"""Rollouts at fleet scale: the Manager's work per wave of a rolling update, and dry runs.

Part 1, a rolling update: a real `ops-manager serve` process (SQLite, or MariaDB + Redis) and
a real `ops-fleet` of N simulated daemons over gRPC. An agent package is uploaded and deployed
through the REST API (target all, strategy rolling, batch_size 100); the fleet walks each
order through downloading → installing → verifying → success in --update-seconds. Measured:

- the Manager process's CPU seconds (psutil, user + system) from the deploy request to
  TRAILING_S after the rollout's completion, minus an idle baseline: the same process, the
  same fleet connected and heartbeating, measured the same way for the same duration right
  after; divided by the number of waves;
- per wave, the wall time from the wave finishing (its last record final) to the next wave's
  orders being stored (the rollout moved to the next wave, the orders in the outbox: one
  commit), observed by polling the database from this process every POLL_S.

Part 2, dry runs: N nodes seeded in bulk into MariaDB and PostgreSQL (as bench_node_list
does), an agent package uploaded, then `POST /api/v1/updates/deploy` with dry_run=true,
target all, rolling (batch_size 100) and canary (canary_size 10, batch_size 100), timed
through the ASGI app (no network), logged in as admin.

    .venv/bin/python bench/bench_rollout.py [--rolling sqlite,mysql] [--dry-run mysql,postgres]
        [--nodes 1000] [--dry-nodes 50000] [--repeats 20] [--write bench/RESULTS.md]

Needs MariaDB (root, no password) on 127.0.0.1:3306, PostgreSQL (postgres, trust) on
127.0.0.1:5432 and Redis on 127.0.0.1:6379, as the test suite does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa
from common import machine, markers, recreate_database, server_version, write_section
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.db import database_url
from opscaffold.manager.logging import configure as configure_logging
from opscaffold.manager.models import Rollout, UpdateRecord
from opscaffold.manager.rollout.states import FINAL
from opscaffold.manager.runtime import Runtime
from opscaffold.protocol.manifest import generate_key, private_pem, public_pem

BIN = Path(sys.executable).parent
TOKEN = "ose_bench-enrollment-token-0123456789abcdef"
PASSWORD = "Bench-Admin-Passw0rd"
ROLLING_DB = "opscaffold_bench_rollout"
DRY_DB = "opscaffold_bench_dry_run"  # bench_node_list's fleet, seeded the same way
REDIS_DB = "12"
NEW_VERSION = "9.0.0"  # the fleet's nodes run 0.1.0
PACKAGE = os.urandom(256 * 1024)  # a virtual node downloads nothing; the size is signed
POLL_S = 0.05
TICK = "1s"
CANARY_SIZE = 10
WARMUP = 3
# After the rollout ends, its trailing work is still counted: a stream looks at the outbox
# again when a delivered command would be due for redelivery (30 s after delivery, plus 1 s).
TRAILING_S = 35.0
MARK_START, MARK_END = markers("bench_rollout")
# What the last recorded run showed, and the changes it measured: the end of the section.
NOTES = Path(__file__).with_name("bench_rollout_notes.md")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * share + 0.5) - 1)]


def settings_for(backend: str, data_dir: Path, name: str) -> Settings:
    env = {"OPS_DATA_DIR": str(data_dir), **database_env(backend, name)}
    return load_settings(None, env)


def database_env(backend: str, name: str) -> dict[str, str]:
    if backend == "sqlite":
        return {}
    return {
        "OPS_DATABASE__DRIVER": backend,
        "OPS_DATABASE__HOST": "127.0.0.1",
        "OPS_DATABASE__USER": "root" if backend == "mysql" else "postgres",
        "OPS_DATABASE__NAME": name,
    }


# -- part 1: a rolling update through a real Manager process ------------------------------
@dataclass
class WaveTimes:
    sent: float | None = None  # first poll that saw all the wave's orders stored
    done: float | None = None  # first poll that saw all the wave's records final


@dataclass
class RollingResult:
    backend: str
    nodes: int
    batch_size: int
    waves: int
    update_seconds: float
    tick: str
    deploy_ms: float  # the deploy request: plan, records, the first wave's orders
    rollout_s: float  # deploy request sent → rollout completed
    window_s: float  # the CPU windows: the rollout and TRAILING_S after it, then idle
    cpu_rollout_s: float
    cpu_idle_s: float  # the same duration, idle, right after
    success: int
    failed: int
    gaps_ms: list[float] = field(default_factory=list)  # wave done → next wave's orders

    @property
    def cpu_per_wave_s(self) -> float:
        return (self.cpu_rollout_s - self.cpu_idle_s) / self.waves


class ManagerProcess:
    def __init__(self, backend: str, data_dir: Path, signing_key: Path) -> None:
        self.backend = backend
        self.http, self.grpc = free_port(), free_port()
        self.env = {
            **os.environ,
            "OPS_DATA_DIR": str(data_dir),
            "OPS_SERVER__HTTP__ADDR": f"127.0.0.1:{self.http}",
            "OPS_SERVER__GRPC__ADDR": f"127.0.0.1:{self.grpc}",
            "OPS_ENROLLMENT_TOKEN": TOKEN,
            "OPS_ADMIN_PASSWORD": PASSWORD,
            "OPS_LOG__LEVEL": "warning",
            "OPS_RATE_LIMIT__ENABLED": "false",
            "OPS_STORAGE__SIGNING_KEY_FILE": str(signing_key),
            "OPS_ROLLOUT__TICK_INTERVAL": TICK,
            **database_env(backend, ROLLING_DB),
        }
        if backend == "mysql":
            self.env |= {
                "OPS_REDIS__ENABLED": "true",
                "OPS_REDIS__HOST": "127.0.0.1",
                "OPS_REDIS__DB": REDIS_DB,
            }
        self.log = data_dir / "manager.out"
        with self.log.open("ab") as out:
            cmd = [str(BIN / "ops-manager"), "serve"]
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}/api/v1"

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    async def wait_live(self, http: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Manager exited:\n{self.log.read_text()[-3000:]}")
            try:
                live = await http.get(f"http://127.0.0.1:{self.http}/livez", timeout=1)
                if live.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("the Manager did not come up")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fleet_cmd(
    grpc_port: int, nodes: int, update_seconds: float, trusted: Path, state: Path
) -> list[str]:
    return [
        str(BIN / "ops-fleet"), "run", "--manager", f"127.0.0.1:{grpc_port}",
        "--enrollment-token", TOKEN, "--nodes", str(nodes), "--ramp", str(max(5, nodes / 1000)),
        "--channels", "16", "--update-seconds", str(update_seconds), "--seed", "1",
        "--trusted-key", str(trusted), "--state-file", str(state),
    ]  # fmt: skip


async def api_call(
    http: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], **kwargs: Any
) -> Any:
    response = await http.request(method, url, headers=headers, **kwargs)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
    return response.json()["data"]


async def login(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    body = {"username": "admin", "password": PASSWORD}
    data = await api_call(http, "POST", f"{base}/auth/login", {}, json=body)
    return {"Authorization": f"Bearer {data['token']}"}


async def upload(http: httpx.AsyncClient, base: str, headers: dict[str, str]) -> int:
    fields = {"component": "agent", "version": NEW_VERSION, "os": "linux", "arch": "amd64"}
    files = {"file": ("agent-9.0.0.tar.gz", PACKAGE, "application/octet-stream")}
    data = await api_call(http, "POST", f"{base}/versions", headers, data=fields, files=files)
    return int(data["id"])


async def wait_online(
    http: httpx.AsyncClient, base: str, headers: dict[str, str], nodes: int
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        params = {"status": "online", "page_size": 1}
        page = await api_call(http, "GET", f"{base}/nodes", headers, params=params)
        if page["total"] >= nodes:
            return
        await asyncio.sleep(1)
    raise RuntimeError(f"fewer than {nodes} nodes came online")


async def watch(
    engine: AsyncEngine, batch_id: str, started: float
) -> tuple[dict[int, WaveTimes], str]:
    """Poll the records until the rollout ends; when each wave's orders were all stored and
    when its records were all final, in seconds since `started`."""
    final = sa.func.sum(sa.case((UpdateRecord.status.in_(FINAL), 1), else_=0))
    ordered = sa.func.sum(sa.case((UpdateRecord.command_id.is_not(None), 1), else_=0))
    per_wave = (
        sa.select(UpdateRecord.wave, sa.func.count(), final, ordered)
        .where(UpdateRecord.batch_id == batch_id)
        .group_by(UpdateRecord.wave)
    )
    status_of = sa.select(Rollout.status).where(Rollout.batch_id == batch_id)
    waves: dict[int, WaveTimes] = {}
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(per_wave)).all()
            status = (await conn.execute(status_of)).scalar_one()
        now = time.monotonic() - started
        for wave, total, finished, sent in rows:
            times = waves.setdefault(int(wave), WaveTimes())
            if times.sent is None and int(sent) == int(total):
                times.sent = now
            if times.done is None and int(finished) == int(total):
                times.done = now
        if status != "running":
            return waves, str(status)
        await asyncio.sleep(POLL_S)


def start_profile(folder: Path | None, pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy samples the Manager (collapsed stacks, one line per stack and its count)."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw", "--nonblocking",
        "--output", str(folder / f"{name}.txt"),
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def stop_profile(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)


async def run_rolling(
    backend: str, nodes: int, batch_size: int, update_seconds: float, profile: Path | None
) -> RollingResult:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    settings = settings_for(backend, data_dir, ROLLING_DB)
    if backend != "sqlite":
        await recreate_database(settings)
    key = generate_key()
    signing, trusted = data_dir / "signing.pem", data_dir / "trusted.pem"
    signing.write_bytes(private_pem(key))
    signing.chmod(0o600)
    trusted.write_bytes(public_pem(key.public_key()))
    manager = ManagerProcess(backend, data_dir, signing)
    fleet: asyncio.subprocess.Process | None = None
    engine: AsyncEngine | None = None
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            await manager.wait_live(http)
            headers = await login(http, manager.base)
            cmd = fleet_cmd(manager.grpc, nodes, update_seconds, trusted, data_dir / "fleet.json")
            fleet = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL)
            await wait_online(http, manager.base, headers, nodes)
            version_id = await upload(http, manager.base, headers)
            engine = create_async_engine(database_url(settings.database))
            await asyncio.sleep(5)  # registrations and first reports settle
            print(f"[{backend}] {nodes} nodes online; deploying", flush=True)
            request = {
                "component": "agent",
                "version_id": version_id,
                "target_type": "all",
                "strategy": "rolling",
                "batch_size": batch_size,
            }
            profiler = start_profile(profile, manager.proc.pid, f"rollout-{backend}")
            cpu_before = manager.cpu()
            started = time.monotonic()
            plan = await api_call(
                http, "POST", f"{manager.base}/updates/deploy", headers, json=request
            )
            deploy_ms = (time.monotonic() - started) * 1000
            waves, status = await watch(engine, plan["batch_id"], started)
            rollout_s = time.monotonic() - started
            if status != "completed":
                raise RuntimeError(f"the rollout ended {status}")
            # Work the rollout leaves behind (streams look at the outbox again when a
            # delivered command would be due for redelivery) belongs to it.
            await asyncio.sleep(TRAILING_S)
            window_s = time.monotonic() - started
            cpu_rollout = manager.cpu() - cpu_before
            stop_profile(profiler)
            # The idle baseline: the same process and fleet, the same duration, no rollout.
            idle_before = manager.cpu()
            await asyncio.sleep(window_s)
            cpu_idle = manager.cpu() - idle_before
            result = await api_call(
                http, "GET", f"{manager.base}/updates/{plan['batch_id']}/status", headers
            )
    finally:
        if engine is not None:
            await engine.dispose()
        if fleet is not None and fleet.returncode is None:
            fleet.send_signal(signal.SIGTERM)
            await asyncio.wait_for(fleet.wait(), 60)
        manager.stop()
    gaps = []
    for number in range(1, len(waves)):
        done, sent = waves[number].done, waves[number + 1].sent
        assert done is not None
        assert sent is not None
        gaps.append(max(sent - done, 0.0) * 1000)
    return RollingResult(
        backend=backend,
        nodes=nodes,
        batch_size=batch_size,
        waves=len(waves),
        update_seconds=update_seconds,
        tick=TICK,
        deploy_ms=round(deploy_ms, 1),
        rollout_s=round(rollout_s, 2),
        window_s=round(window_s, 1),
        cpu_rollout_s=round(cpu_rollout, 2),
        cpu_idle_s=round(cpu_idle, 2),
        success=int(result["success"]),
        failed=int(result["failed"]),
        gaps_ms=[round(g, 1) for g in gaps],
    )


# -- part 2: dry runs over a seeded fleet ------------------------------------------------
@dataclass
class DryRunResult:
    backend: str
    version: str
    nodes: int
    seed_s: float
    timings: dict[str, list[float]]  # strategy → ms per request


DRY_RUNS: dict[str, dict[str, Any]] = {
    "rolling, batch_size 100": {"strategy": "rolling", "batch_size": 100},
    f"canary {CANARY_SIZE}, then batch_size 100": {
        "strategy": "canary",
        "canary_size": CANARY_SIZE,
        "batch_size": 100,
    },
}


async def run_dry(backend: str, nodes: int, repeats: int, profile: Path | None) -> DryRunResult:
    import bench_node_list  # the node list's fleet, seeded in bulk

    bench_node_list.NODES = nodes
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "OPS_DATA_DIR": data_dir,
            "OPS_LOG__LEVEL": "warning",
            "OPS_ADMIN_PASSWORD": PASSWORD,
            "OPS_RATE_LIMIT__ENABLED": "false",
            **database_env(backend, DRY_DB),
        }
        settings = load_settings(None, env)
        configure_logging(settings.log)
        started = time.perf_counter()
        await recreate_database(settings)
        await asyncio.to_thread(migrate.upgrade, settings)
        runtime = Runtime.build(settings)
        await bench_node_list.seed(runtime.engine)
        seed_s = time.perf_counter() - started
        print(f"[{backend}] seeded {nodes} nodes in {seed_s:.1f}s", flush=True)
        app = create_app(settings, runtime=runtime)
        timings: dict[str, list[float]] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=300
            ) as http:
                base = "http://bench/api/v1"
                headers = await login(http, base)
                version_id = await upload(http, base, headers)
                profiler = start_profile(profile, os.getpid(), f"dry-run-{backend}")
                for name, strategy in DRY_RUNS.items():
                    request = {
                        "component": "agent",
                        "version_id": version_id,
                        "target_type": "all",
                        "dry_run": True,
                        **strategy,
                    }
                    samples = []
                    for n in range(WARMUP + repeats):
                        begin = time.perf_counter()
                        plan = await api_call(
                            http, "POST", f"{base}/updates/deploy", headers, json=request
                        )
                        if n >= WARMUP:
                            samples.append((time.perf_counter() - begin) * 1000)
                    assert plan["batch_id"] is None
                    assert plan["total_nodes"] > 0
                    timings[name] = samples
                    print(
                        f"[{backend}] dry run, {name}: {plan['total_nodes']} nodes in "
                        f"{len(plan['batches'])} waves, p50 {statistics.median(samples):.0f} ms",
                        flush=True,
                    )
                stop_profile(profiler)
        version = await server_version(runtime.engine)
        await runtime.close()
    return DryRunResult(backend, version, nodes, seed_s, timings)


# -- report ------------------------------------------------------------------------------
NAMES = {"sqlite": "SQLite", "mysql": "MariaDB + Redis", "postgres": "PostgreSQL"}
DRY_NAMES = {"mysql": "MariaDB", "postgres": "PostgreSQL"}  # in process, without Redis


def report(
    rolling: list[RollingResult], dry: list[DryRunResult], repeats: int, notes: list[str]
) -> str:
    lines = [
        MARK_START,
        "## Rollouts — `bench/bench_rollout.py`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d}, {machine()}.",
    ]
    if dry:
        lines.append(
            "Databases: " + "; ".join(f"{DRY_NAMES[d.backend]}: {d.version}" for d in dry) + "."
        )
    if rolling:
        r0 = rolling[0]
        lines += [
            "",
            f"### A rolling update of {r0.nodes:,} simulated nodes in batches of {r0.batch_size}",
            "",
            f"One `ops-manager serve` process, one `ops-fleet` process of {r0.nodes:,} daemons "
            "(Connect streams, default",
            "intervals: heartbeat 30 s, metrics 60 s) and the database share the 2 cores. An "
            "agent package is",
            "uploaded and deployed through the REST API (target all, rolling, batch_size "
            f"{r0.batch_size}); each node takes",
            f"~{r0.update_seconds:g} s per update (downloading 25/50/75/100 %, installing, "
            "verifying, success: 8 reports).",
            f"`rollout.advance` ticks every {r0.tick}. Manager CPU: psutil, user + system, "
            "from the deploy request to",
            f"{TRAILING_S:g} s after completion (streams look at the outbox again when an "
            "order they wrote would be due",
            "for redelivery), minus the same process idle (fleet connected, no rollout) for "
            "the same duration right after.",
            "Wave gap: from the wave's last record final to the next wave's orders stored, "
            f"seen by polling the database every {POLL_S * 1000:g} ms.",
            "",
            "| database | waves | deploy request ms | rollout s | CPU window s "
            "| Manager CPU s: rollout / idle "
            "| **CPU s per wave** | wave gap p50 ms | wave gap max ms | success / failed |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rolling:
            lines.append(
                f"| {NAMES[r.backend]} | {r.waves} | {r.deploy_ms:.0f} | {r.rollout_s:.1f} "
                f"| {r.window_s:.0f} "
                f"| {r.cpu_rollout_s:.2f} / {r.cpu_idle_s:.2f} | **{r.cpu_per_wave_s:.2f}** "
                f"| {statistics.median(r.gaps_ms):.0f} | {max(r.gaps_ms):.0f} "
                f"| {r.success:,} / {r.failed} |"
            )
    if dry:
        d0 = dry[0]
        lines += [
            "",
            f"### Dry run (`POST /api/v1/updates/deploy`, dry_run=true), {d0.nodes:,} nodes",
            "",
            f"The node list's fleet ({d0.nodes:,} nodes, ~90 % online; seeded as "
            "`bench_node_list.py` does), an agent",
            "package uploaded; target all, through the ASGI app (no network), logged in as "
            f"admin. {WARMUP} warm-up requests,",
            f"then {repeats} one after another; ms as the client sees it (plan, the whole "
            "plan as JSON: every node by",
            "wave, ~3 MB).",
            "",
            "| strategy | " + " | ".join(f"{DRY_NAMES[d.backend]} p50 | p99" for d in dry) + " |",
            "|---|" + "---|---|" * len(dry),
        ]
        for name in DRY_RUNS:
            cells = [
                f"{statistics.median(d.timings[n]):.0f} | {percentile(d.timings[n], 0.99):.0f}"
                for d in dry
                for n in [name]
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", *notes, MARK_END]
    return "\n".join(lines) + "\n"


def load_results(path: Path) -> tuple[list[RollingResult], list[DryRunResult]]:
    """The results a run printed, one JSON object a line."""
    rolling, dry = [], []
    for line in path.read_text().splitlines():
        if not line.startswith('{"backend"'):
            continue
        found = json.loads(line)
        if "waves" in found:
            found.pop("cpu_per_wave_s")
            rolling.append(RollingResult(**found))
        else:
            dry.append(DryRunResult(**found))
    return rolling, dry


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rolling", default="sqlite,mysql", help="backends of part 1, or ''")
    parser.add_argument("--dry-run", default="mysql,postgres", help="backends of part 2, or ''")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--update-seconds", type=float, default=0.5)
    parser.add_argument("--dry-nodes", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--profile", type=Path, help="py-spy the Manager (rollout, dry runs); stacks go here"
    )
    parser.add_argument(
        "--notes",
        type=Path,
        help="Markdown to end the section with (default: bench_rollout_notes.md)",
    )
    parser.add_argument("--write", type=Path, help="update this file's rollout section")
    parser.add_argument(
        "--render", type=Path, help="make the section from a run's printed results; run nothing"
    )
    args = parser.parse_args()
    if args.render:
        rolling, dry = load_results(args.render)
        notes = (args.notes or NOTES).read_text().splitlines()
        section = report(
            rolling, dry, len(dry[0].timings[next(iter(DRY_RUNS))]) if dry else 0, notes
        )
        print(section)
        if args.write:
            write_section(args.write, "bench_rollout", section)
        return
    rolling = [
        await run_rolling(b, args.nodes, args.batch_size, args.update_seconds, args.profile)
        for b in filter(None, args.rolling.split(","))
    ]
    for r in rolling:
        print(json.dumps({**asdict(r), "cpu_per_wave_s": round(r.cpu_per_wave_s, 3)}), flush=True)
    dry = [
        await run_dry(b, args.dry_nodes, args.repeats, args.profile)
        for b in filter(None, args.dry_run.split(","))
    ]
    for d in dry:
        print(json.dumps(asdict(d)), flush=True)
    notes = (args.notes or NOTES).read_text().splitlines()
    section = report(rolling, dry, args.repeats, notes)
    print(section)
    if args.write:
        write_section(args.write, "bench_rollout", section)


if __name__ == "__main__":
    asyncio.run(main())
