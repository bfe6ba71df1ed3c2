from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.daemon.helpers import BIN, closed_port_target


def test_ops_fleet_run_prints_a_json_summary() -> None:
    result = subprocess.run(
        [
            str(BIN / "ops-fleet"),
            "run",
            "--manager",
            closed_port_target(),
            "--nodes",
            "5",
            "--enrollment-token",
            "t",
            "--duration",
            "1",
            "--ramp",
            "0",
            "--heartbeat-interval",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["nodes"] == 5
    assert summary["transport"] == "connect"
    assert set(summary["reports"]) >= {"sent", "acknowledged", "refused"}
    assert set(summary["latency_to_ack_ms"]) == {"p50", "p99"}
    assert summary["errors"]["UNAVAILABLE"] >= 5


def test_ops_fleet_refuses_a_bad_address() -> None:
    result = subprocess.run(
        [str(BIN / "ops-fleet"), "run", "--manager", "nowhere", "--nodes", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_ops_fleet_needs_a_token_for_new_nodes() -> None:
    result = subprocess.run(
        [str(BIN / "ops-fleet"), "run", "--manager", closed_port_target(), "--nodes", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "enrollment token" in result.stderr


def test_ops_fleet_refuses_an_update_failure_rate_above_one() -> None:
    result = subprocess.run(
        [
            str(BIN / "ops-fleet"),
            "run",
            "--manager",
            closed_port_target(),
            "--nodes",
            "1",
            "--enrollment-token",
            "t",
            "--update-failure-rate",
            "1.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "update_failure_rate" in result.stderr


def test_ops_fleet_refuses_a_trusted_key_that_is_no_key(tmp_path: Path) -> None:
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    result = subprocess.run(
        [
            str(BIN / "ops-fleet"),
            "run",
            "--manager",
            closed_port_target(),
            "--nodes",
            "1",
            "--enrollment-token",
            "t",
            "--trusted-key",
            str(not_a_key),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"trusted key {not_a_key}" in result.stderr


def test_ops_fleet_refuses_a_pin_on_an_unknown_metric() -> None:
    result = subprocess.run(
        [
            str(BIN / "ops-fleet"),
            "run",
            "--manager",
            closed_port_target(),
            "--nodes",
            "1",
            "--enrollment-token",
            "t",
            "--pin-metric",
            "cpu_temperature=80",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown metric cpu_temperature" in result.stderr
