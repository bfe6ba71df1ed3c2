from __future__ import annotations

import subprocess

import pytest

from tests.daemon.helpers import BIN


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["ops-daemon", "--help"], ["run", "agent"]),
        (["ops-daemon", "run", "--help"], ["--manager", "--enrollment-token", "--transport"]),
        (["ops-daemon", "agent", "--help"], ["--port", "--host"]),
        (["ops-fleet", "--help"], ["run"]),
        (["ops-fleet", "run", "--help"], ["--nodes", "--churn", "--channels", "--state-file"]),
    ],
)
def test_help(command: list[str], expected: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=30,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    for word in expected:
        assert word in result.stdout
