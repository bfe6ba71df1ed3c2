"""Ingest benchmark: the Manager against `ops-fleet`, and the same fleet against a no-op server.

For each case it records reports per second sustained, latency to acknowledgement (p50/p99),
the Manager's CPU and peak RSS, and metric rows stored versus metric reports acknowledged.

    .venv/bin/python bench/bench_ingest.py --db sqlite --nodes 1000 --rate 1 --transport connect
    .venv/bin/python bench/bench_ingest.py --matrix      # the table in bench/RESULTS.md

Rates: 1 = the defaults (heartbeat 30 s, metrics 60 s); 10 = ten times as often.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "ose_bench-enrollment-token-0123456789abcdef"
MYSQL_DB = "opscaffold_bench_ingest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def reset_mysql() -> None:
    subprocess.run(
        [
            "mariadb",
            "-uroot",
            "-e",
            f"DROP DATABASE IF EXISTS {MYSQL_DB}; CREATE DATABASE {MYSQL_DB}",
        ],
        check=True,
    )


def manager_env(db: str, data_dir: Path, http: int, grpc_port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "OPS_DATA_DIR": str(data_dir),
        "OPS_SERVER__HTTP__ADDR": f"127.0.0.1:{http}",
        "OPS_SERVER__GRPC__ADDR": f"127.0.0.1:{grpc_port}",
        "OPS_ENROLLMENT_TOKEN": TOKEN,
        "OPS_ADMIN_PASSWORD": "Bench-Admin-Passw0rd",
        "OPS_LOG__LEVEL": "warning",
    }
    if db == "mysql":
        env |= {
            "OPS_DATABASE__DRIVER": "mysql",
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__USER": "root",
            "OPS_DATABASE__NAME": MYSQL_DB,
            "OPS_REDIS__ENABLED": "true",
            "OPS_REDIS__HOST": "127.0.0.1",
            "OPS_REDIS__DB": "13",
        }
    return env


def stored_metric_rows(db: str, data_dir: Path) -> int:
    if db == "mysql":
        out = subprocess.run(
            ["mariadb", "-uroot", "-N", "-e", f"SELECT COUNT(*) FROM {MYSQL_DB}.node_metrics"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return int(out.stdout.strip())
    import sqlite3

    with sqlite3.connect(data_dir / "manager.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM node_metrics").fetchone()[0])


def fleet_cmd(
    port: int, nodes: int, rate: int, transport: str, duration: float, state: Path
) -> list[str]:
    return [
        str(BIN / "ops-fleet"), "run", "--manager", f"127.0.0.1:{port}",
        "--enrollment-token", TOKEN, "--nodes", str(nodes), "--transport", transport,
        "--heartbeat-interval", str(30 / rate), "--metric-interval", str(60 / rate),
        "--duration", str(duration), "--ramp", str(ramp_for(nodes)), "--channels", "16",
        "--state-file", str(state),
    ]  # fmt: skip


def ramp_for(nodes: int) -> float:
    """Nodes start over this many seconds: 1,000 a second, as daemons of a fleet do not all
    start in the same instant."""
    return max(5.0, nodes / 1000)


def duration_for(nodes: int) -> float:
    """Long enough for the ramp plus at least two metric intervals at the default rate."""
    return 60.0 if nodes <= 10_000 else ramp_for(nodes) + 90.0


def enroll(port: int, nodes: int, state: Path) -> float:
    """Register the whole fleet once, so the measured run sees steady state, not enrollment."""
    started = time.monotonic()
    cmd = fleet_cmd(port, nodes, 1, "connect", ramp_for(nodes) + 10, state)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def settled_rows(db: str, data_dir: Path) -> int:
    """Rows once the enrollment run's last reports have landed (counted twice, a second apart)."""
    previous = -1
    while (count := stored_metric_rows(db, data_dir)) != previous:
        previous = count
        time.sleep(1)
    return count


def run_case(db: str, nodes: int, rate: int, transport: str, duration: float) -> dict[str, Any]:
    """One Manager (or the no-op server when db == 'noop') under one fleet."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    http, grpc_port = free_port(), free_port()
    if db == "noop":
        cmd = [sys.executable, str(ROOT / "bench" / "noop_manager.py"), "--port", str(grpc_port)]
        server = subprocess.Popen(cmd)
    else:
        if db == "mysql":
            reset_mysql()
        env = manager_env(db, data_dir, http, grpc_port)
        server = subprocess.Popen(
            [str(BIN / "ops-manager"), "serve"], env=env, stdout=subprocess.DEVNULL
        )
    try:
        wait_port(grpc_port)
        state = data_dir / "fleet.json"
        enroll_s = enroll(grpc_port, nodes, state)
        rows_before = 0 if db == "noop" else settled_rows(db, data_dir)
        proc = psutil.Process(server.pid)
        cpu_before = sum(proc.cpu_times()[:2])
        fleet = subprocess.Popen(
            fleet_cmd(grpc_port, nodes, rate, transport, duration, state),
            stdout=subprocess.PIPE,
            text=True,
        )
        peak_rss = 0
        while fleet.poll() is None:
            peak_rss = max(peak_rss, proc.memory_info().rss)
            time.sleep(1)
        summary = json.loads(fleet.stdout.read() if fleet.stdout else "{}")
        cpu = sum(proc.cpu_times()[:2]) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    reports = summary["reports"]
    return {
        "db": db,
        "nodes": nodes,
        "rate": rate,
        "transport": transport,
        "duration_s": summary["duration_s"],
        "offered_per_s": round(nodes * rate * (1 / 30 + 1 / 60), 1),
        "acked_per_s": round(reports["acknowledged"] / summary["duration_s"], 1),
        "p50_ms": summary["latency_to_ack_ms"]["p50"],
        "p99_ms": summary["latency_to_ack_ms"]["p99"],
        "cpu_cores": round(cpu / summary["duration_s"], 2),
        "peak_rss_mb": round(peak_rss / 2**20),
        "metrics_acked": reports["acknowledged_metrics"],
        "metrics_unacked_at_end": reports["metrics_unacknowledged_at_end"],
        "metric_rows": None if db == "noop" else stored_metric_rows(db, data_dir) - rows_before,
        "enroll_s": round(enroll_s, 1),
        "refused": reports["refused"],
        "errors": summary["errors"],
        "registered": summary["registered_nodes"],
    }


MATRIX = [
    (nodes, rate, transport)
    for nodes in (1_000, 10_000, 50_000)
    for rate in (1, 10)
    for transport in ("connect", "unary")
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "mysql", "noop"], default="sqlite")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1)
    parser.add_argument("--transport", choices=["connect", "unary"], default="connect")
    parser.add_argument("--duration", type=float, help="default: by fleet size")
    parser.add_argument("--matrix", action="store_true", help="every case of the table")
    parser.add_argument("--sizes", default="1000,10000,50000", help="fleet sizes of --matrix")
    parser.add_argument("--table", type=Path, help="print the Markdown table of a JSONL file")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(line) for line in args.table.read_text().splitlines() if line]))
        return
    sizes = {int(n) for n in args.sizes.split(",")}
    cases = (
        [(db, *case) for case in MATRIX if case[0] in sizes for db in ("noop", "sqlite", "mysql")]
        if args.matrix
        else [(args.db, args.nodes, args.rate, args.transport)]
    )
    for db, nodes, rate, transport in cases:
        duration = args.duration or duration_for(nodes)
        print(json.dumps(run_case(db, nodes, rate, transport, duration)), flush=True)


SERVERS = {"noop": "no-op ceiling", "sqlite": "SQLite", "mysql": "MariaDB + Redis"}


def table(results: list[dict[str, Any]]) -> str:
    """The RESULTS.md table: each case against the no-op server's rate for the same load."""
    ceiling = {
        (r["nodes"], r["rate"], r["transport"]): r["acked_per_s"]
        for r in results
        if r["db"] == "noop"
    }
    lines = [
        "| nodes | rate | transport | server | registered | offered/s | acked/s | vs no-op "
        "| p50 ms | p99 ms | Manager CPU (cores) | peak RSS MB | metric rows stored / acked "
        "| errors |",
        "|" + "---|" * 14,
    ]
    for r in results:
        key = (r["nodes"], r["rate"], r["transport"])
        ratio = "—" if r["db"] == "noop" else f"{r['acked_per_s'] / max(ceiling[key], 0.1):.2f}"
        stored = "—" if r["metric_rows"] is None else f"{r['metric_rows']} / {r['metrics_acked']}"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "—"
        lines.append(
            f"| {r['nodes']:,} | {r['rate']}× | {r['transport']} | {SERVERS[r['db']]} "
            f"| {r['registered']:,} | {r['offered_per_s']:g} | {r['acked_per_s']:g} | {ratio} "
            f"| {r['p50_ms']} | {r['p99_ms']} | {r['cpu_cores']} | {r['peak_rss_mb']} "
            f"| {stored} | {errors} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
