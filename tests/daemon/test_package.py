"""Packages made by scripts/package.py: reproducible, named for their platform, and running
their own code, which reports the package's version."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from opscaffold.protocol.package import host_arch, host_os
from tests.daemon.helpers import health
from tests.daemon.packages import build
from tests.helpers import free_port, poll_until


def unpack(package: Path, into: Path) -> Path:
    with tarfile.open(package) as tar:
        tar.extractall(into, filter="data")
    return into


def test_the_same_sources_give_the_same_bytes(tmp_path: Path) -> None:
    first = build("agent", "1.2.3", tmp_path / "a")
    second = build("agent", "1.2.3", tmp_path / "b")

    assert first.name == f"agent-1.2.3-{host_os()}-{host_arch()}.tar.gz"
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    names = [m.name for m in members if m.isfile()]
    assert names == sorted(names)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "", "", 946_684_800)
    }
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


@pytest.mark.parametrize(
    ("component", "must", "must_not"),
    [
        ("agent", "lib/opscaffold/daemon/agent/server.py", "lib/opscaffold/daemon/session.py"),
        ("daemon", "lib/opscaffold/daemon/session.py", "lib/opscaffold/manager/app.py"),
    ],
)
def test_a_package_holds_its_component_and_the_protocol(
    tmp_path: Path, component: str, must: str, must_not: str
) -> None:
    root = unpack(build(component, "1.2.3", tmp_path), tmp_path / "unpacked")

    info = json.loads((root / "package.json").read_text())
    assert info == {
        "format": 1,
        "component": component,
        "version": "1.2.3",
        "entry": f"bin/{component}",
    }
    assert (root / must).is_file()
    assert (root / "lib/opscaffold/protocol/manifest.py").is_file()
    assert not (root / must_not).exists()
    assert (root / info["entry"]).stat().st_mode & 0o111


def test_the_packaged_agent_runs_its_own_code_and_reports_its_version(tmp_path: Path) -> None:
    root = unpack(build("agent", "7.7.7", tmp_path), tmp_path / "unpacked")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(root / "bin/agent"), "--port", str(port), "--host", "127.0.0.1"]
    )
    try:
        body = poll_until(lambda: health(port), what="the packaged agent answers")
        assert body["version"] == "7.7.7"
        assert body["pid"] == process.pid  # the entry point became the agent
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_packaged_daemon_reports_its_version(tmp_path: Path) -> None:
    root = unpack(build("daemon", "7.7.8", tmp_path), tmp_path / "unpacked")

    result = subprocess.run(
        [sys.executable, str(root / "bin/daemon"), "version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert result.stdout.strip() == "7.7.8"


def test_a_version_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        build("agent", "1.2", tmp_path)
    assert "is not a version like" in refused.value.stderr
