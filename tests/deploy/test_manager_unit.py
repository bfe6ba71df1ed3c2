"""deploy/systemd/ops-manager.service, the Manager on one host without containers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opscaffold.manager.cli import app as manager_cli
from tests.deploy.conftest import ROOT
from tests.deploy.helpers import load, setting_of

UNIT = ROOT / "deploy/systemd/ops-manager.service"
INSTALLED = "/opt/ops-scaffold/manager/bin/ops-manager"


def values() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.timeout(30)
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """systemd-analyze verify, with ExecStart pointed at this checkout's ops-manager (the
    one place that differs: verify wants the executable to exist)."""
    text = UNIT.read_text()
    assert text.count(INSTALLED) == 1
    copy = tmp_path / "ops-manager.service"
    copy.write_text(text.replace(INSTALLED, str(Path(sys.executable).parent / "ops-manager")))
    result = subprocess.run(
        ["/usr/bin/systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=25,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_it_serves_from_the_state_directory_as_data_dir() -> None:
    unit = values()
    (exec_start,) = unit["ExecStart"]
    program, command, *rest = exec_start.split()
    assert program == INSTALLED
    commands = {
        c.name or (c.callback.__name__ if c.callback else "")
        for c in manager_cli.registered_commands
    }
    assert command in commands
    assert rest == ["--config", "/etc/ops-scaffold/manager.yaml"]
    (environment,) = unit["Environment"]
    name, _, data_dir = environment.partition("=")
    assert setting_of(name) == "data_dir"
    assert load({name: data_dir}).data_dir == Path("/var/lib") / unit["StateDirectory"][0]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["User"] != ["root"]
