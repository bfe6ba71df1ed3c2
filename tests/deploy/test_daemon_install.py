"""`ops-daemon install` and `uninstall`: what they write on a host (under --root here), that
systemd accepts the unit, that a second run changes nothing, and a package-built install."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pytest
import yaml
from typer.testing import CliRunner

from opscaffold.daemon import install as installer
from opscaffold.daemon.agent.tasks import KEY_FILE
from opscaffold.daemon.cli import app as daemon_cli
from opscaffold.daemon.config import load_config
from opscaffold.daemon.state import NodeState, StateStore
from opscaffold.protocol import task as task_keys
from opscaffold.protocol.manifest import fingerprint, generate_key, public_pem
from tests.deploy.conftest import ROOT

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
runner = CliRunner()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def install(root: Path, *arguments: str) -> str:
    result = runner.invoke(
        daemon_cli, ["install", "--root", str(root), "--manager", "ops.example.com:443", *arguments]
    )
    assert result.exit_code == 0, result.output
    return result.output


def keys(tmp_path: Path) -> tuple[Path, str, Path]:
    """A package-signing public key (with its fingerprint) and a task public key."""
    package_key = generate_key()
    package_file = tmp_path / "package-key.pem"
    package_file.write_bytes(public_pem(package_key.public_key()))
    task_file = tmp_path / "task-key.pem"
    task_file.write_bytes(task_keys.public_pem(task_keys.generate_key().public_key()))
    return package_file, fingerprint(package_key.public_key()), task_file


def verify(unit: Path) -> None:
    """systemd's own check of the unit: no error and no warning (unknown keys only warn).
    ExecStart names this interpreter, so the executable it checks for exists."""
    if not Path(SYSTEMD_ANALYZE).exists():
        pytest.fail(f"{SYSTEMD_ANALYZE} is missing (Debian's systemd package)")
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def unit_values(unit: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.timeout(60)
def test_install_writes_a_hardened_unit_systemd_accepts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    package_key, package_fingerprint, task_key = keys(tmp_path)
    install(
        root,
        "--enrollment-token",
        "enroll-me",
        "--trusted-key",
        str(package_key),
        "--manager-key",
        str(task_key),
        "--labels",
        "env=prod,rack=r1",
        "--task-file-dir",
        "/srv/files",
    )
    unit = root / "etc/systemd/system/ops-daemon.service"
    verify(unit)
    values = unit_values(unit)
    assert values["ExecStart"] == [
        f"{sys.executable} -m opscaffold.daemon run --config /etc/ops-daemon/daemon.yaml"
    ]
    assert values["NoNewPrivileges"] == ["yes"]
    assert values["ProtectSystem"] == ["strict"]
    # The state directory (downloads, installed packages) and the file tasks' directory stay
    # writable; nothing else does.
    assert values["ReadWritePaths"] == ["/var/lib/ops-daemon", "-/srv/files"]
    assert values["RestartPreventExitStatus"] == ["2 3"]
    assert mode(unit) == 0o644

    config_dir = root / "etc/ops-daemon"
    config_file = config_dir / "daemon.yaml"
    assert (mode(config_dir), mode(config_file)) == (0o700, 0o600)  # the token is in it
    settings = load_config(config_file, {})
    assert settings.manager == "ops.example.com:443"
    assert settings.enrollment_token is not None
    assert settings.enrollment_token.get_secret_value() == "enroll-me"
    assert settings.labels == {"env": "prod", "rack": "r1"}
    assert settings.state_dir == Path("/var/lib/ops-daemon")
    assert settings.task_file_dirs == [Path("/srv/files")]

    state = root / "var/lib/ops-daemon"
    assert mode(state) == 0o700
    trusted = state / "trusted-keys" / f"{package_fingerprint}.pem"
    assert trusted.read_bytes() == package_key.read_bytes()
    assert mode(trusted) == 0o600
    pinned = state / "agent" / KEY_FILE
    assert pinned.read_bytes() == task_key.read_bytes()


def test_a_second_run_changes_nothing_and_keeps_the_identity(tmp_path: Path) -> None:
    root = tmp_path / "root"
    package_key, _, task_key = keys(tmp_path)
    arguments = ["--trusted-key", str(package_key), "--manager-key", str(task_key)]
    first = install(root, *arguments)
    assert "written:" in first
    store = StateStore(root / "var/lib/ops-daemon")
    store.save(NodeState(uuid="4f0c2b4e-6d3c-4e0c-9a43-3d1d7b7e2f10", node_token="t"))
    identity = store.path.read_bytes()
    unit = root / "etc/systemd/system/ops-daemon.service"
    before = unit.stat().st_mtime_ns
    second = install(root, *arguments)
    assert "written:" not in second, second
    assert second.count("unchanged:") == 4  # config, unit, trusted key, task key
    assert unit.stat().st_mtime_ns == before
    assert store.path.read_bytes() == identity


def test_tls_files_are_copied_beside_the_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(f"{name} pem\n")
    install(
        root,
        *["--tls-ca", str(tmp_path / "ca.pem")],
        *["--tls-cert", str(tmp_path / "cert.pem")],
        *["--tls-key", str(tmp_path / "key.pem")],
    )
    tls_dir = root / "etc/ops-daemon/tls"
    assert mode(tls_dir / "key.pem") == 0o600
    assert mode(tls_dir / "ca.pem") == 0o644
    settings = load_config(root / "etc/ops-daemon/daemon.yaml", {})
    assert settings.tls.ca == Path("/etc/ops-daemon/tls/ca.pem")
    assert settings.tls.key == Path("/etc/ops-daemon/tls/key.pem")


def test_without_protect_system_the_unit_leaves_the_file_system_writable(tmp_path: Path) -> None:
    install(tmp_path, "--no-protect-system")
    unit = tmp_path / "etc/systemd/system/ops-daemon.service"
    values = unit_values(unit)
    assert "ProtectSystem" not in values
    assert "ReadWritePaths" not in values
    assert values["NoNewPrivileges"] == ["yes"]
    verify(unit)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--manager", "no port here"], "the daemon would refuse these settings"),
        (["--manager", "m:9090", "--trusted-key", "/nonexistent.pem"], "--trusted-key"),
        (["--manager", "m:9090", "--tls-cert", "/c.pem"], "--tls-cert: cannot read /c.pem"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(daemon_cli, ["install", "--root", str(tmp_path), *arguments])
    assert result.exit_code == 1
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_relative_state_dir_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        daemon_cli, ["install", "--root", str(tmp_path), "--manager", "m:9090", "--state-dir", "st"]
    )
    assert result.exit_code == 2
    assert "must be an absolute path" in result.output


def test_uninstall_removes_the_service_and_keeps_the_identity_unless_purged(tmp_path: Path) -> None:
    install(tmp_path)
    state = tmp_path / "var/lib/ops-daemon"
    result = runner.invoke(daemon_cli, ["uninstall", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "etc/systemd/system/ops-daemon.service").exists()
    assert not (tmp_path / "etc/ops-daemon").exists()
    assert state.is_dir()
    assert "kept: the state directory" in result.output
    again = runner.invoke(daemon_cli, ["uninstall", "--root", str(tmp_path)])
    assert again.exit_code == 0
    assert "nothing to remove" in again.output
    purged = runner.invoke(daemon_cli, ["uninstall", "--root", str(tmp_path), "--purge"])
    assert purged.exit_code == 0
    assert not state.exists()


def test_on_a_live_host_systemd_is_told(tmp_path: Path) -> None:
    """The calls a live host gets (the CLI passes systemctl only when systemd runs and no
    --root is given): restart when something changed, start when nothing did."""
    calls: list[list[str]] = []

    def systemctl(arguments: Sequence[str]) -> None:
        calls.append(list(arguments))

    plan = installer.InstallPlan(
        manager="m:9090", command=[sys.executable, "-m", "opscaffold.daemon"]
    )
    installer.install(plan, tmp_path, systemctl)
    installer.install(plan, tmp_path, systemctl)
    unit = installer.UNIT_NAME
    assert calls == [
        ["daemon-reload"],
        ["enable", unit],
        ["restart", unit],
        ["daemon-reload"],
        ["enable", unit],
        ["start", unit],
    ]
    calls.clear()
    installer.uninstall(tmp_path, systemctl)
    assert calls == [["disable", "--now", unit], ["daemon-reload"]]
    calls.clear()
    installer.uninstall(tmp_path, systemctl)  # nothing left: systemd is not asked
    assert calls == []


def _as_nobody() -> list[str]:
    """A prefix that runs a command without root privileges (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to drop root for this test")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.timeout(60)
def test_without_root_and_without_root_dir_it_refuses_clearly() -> None:
    ops_daemon = Path(sys.executable).parent / "ops-daemon"
    for command in ("install", "uninstall"):
        extra = ["--manager", "m:9090"] if command == "install" else []
        result = subprocess.run(
            [*_as_nobody(), str(ops_daemon), command, *extra],
            capture_output=True,
            text=True,
            timeout=50,
            cwd="/",
        )
        assert result.returncode == 1, result.stderr
        assert "run it as root (sudo), or with --root DIR" in result.stderr


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_installed_from_a_built_package(tmp_path: Path) -> None:
    """The documented host install (docs/deployment.md): unpack the daemon's package built by
    scripts/package.py, run its `install` with the Python that has the daemon's libraries;
    the unit then starts the package's entry point, which runs."""
    built = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/package.py"),
            "--version",
            "1.2.0",
            "--component",
            "daemon",
            "--output",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert built.returncode == 0, built.stderr
    package = tmp_path / "opt/ops-daemon/1.2.0"
    package.mkdir(parents=True)
    with tarfile.open(built.stdout.strip()) as archive:
        archive.extractall(package, filter="data")
    root = tmp_path / "root"
    result = subprocess.run(
        [
            sys.executable,
            str(package / "bin/daemon"),
            "install",
            "--root",
            str(root),
            "--manager",
            "ops.example.com:443",
        ],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    unit = root / "etc/systemd/system/ops-daemon.service"
    (exec_start,) = unit_values(unit)["ExecStart"]
    assert exec_start.split() == [
        sys.executable,
        str(package / "bin/daemon"),
        "run",
        "--config",
        "/etc/ops-daemon/daemon.yaml",
    ]
    verify(unit)
    version = subprocess.run(
        [sys.executable, str(package / "bin/daemon"), "version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert version.stdout.strip() == "1.2.0"
    assert yaml.safe_load((root / "etc/ops-daemon/daemon.yaml").read_text())["manager"] == (
        "ops.example.com:443"
    )


def test_state_dir_is_as_the_host_sees_it(tmp_path: Path) -> None:
    install(tmp_path, "--state-dir", "/srv/ops-daemon")
    assert (tmp_path / "srv/ops-daemon").is_dir()
    values = unit_values(tmp_path / "etc/systemd/system/ops-daemon.service")
    assert values["ReadWritePaths"] == ["/srv/ops-daemon"]
    assert PurePosixPath("/var/lib/ops-daemon") == installer.STATE_DIR


def test_tls_settings_the_daemon_refuses_are_refused(tmp_path: Path) -> None:
    """A client certificate without the CA is no mTLS the daemon can use: refused, nothing
    written, though the files themselves are readable."""
    files = tmp_path / "files"
    files.mkdir()
    for name in ("cert", "key"):
        (files / f"{name}.pem").write_text(f"{name}\n")
    root = tmp_path / "root"
    result = runner.invoke(
        daemon_cli,
        ["install", "--root", str(root), "--manager", "m:9090",
         "--tls-cert", str(files / "cert.pem"), "--tls-key", str(files / "key.pem")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "mTLS needs tls.ca" in result.output
    assert not root.exists()
