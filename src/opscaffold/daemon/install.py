"""Installing the daemon on a host as a systemd service, and removing it again.

`ops-daemon install` writes, under `root` (/ on a live host):

    etc/systemd/system/ops-daemon.service   the unit (hardened; see `unit_text`)
    etc/ops-daemon/                         0700: daemon.yaml (0600, holds the enrollment
                                            token) and tls/ (copies of the TLS files)
    var/lib/ops-daemon/                     0700: the state directory, with the trusted
                                            package keys and the pinned task key

Every step is idempotent: running it again with the same arguments changes nothing, and the
node's identity (node.json) is never touched. On a live host systemd is then told: reload,
enable, and start (restart when something changed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from pydantic import ValidationError

from opscaffold.daemon.app import AGENT_DIR
from opscaffold.daemon.config import DaemonConfig
from opscaffold.daemon.state import private_dir, write_private
from opscaffold.daemon.taskrelay import TaskKeyError, TaskKeyStore
from opscaffold.daemon.trust import TrustedKeyError, TrustStore
from opscaffold.protocol.package import INFO_FILE, LIB_DIR, PackageInfo

UNIT_NAME = "ops-daemon.service"
UNIT_DIR = PurePosixPath("/etc/systemd/system")
CONFIG_DIR = PurePosixPath("/etc/ops-daemon")
CONFIG_FILE = "daemon.yaml"
STATE_DIR = PurePosixPath("/var/lib/ops-daemon")


class InstallError(Exception):
    """The installation cannot go on; the message says what to change."""


@dataclass(frozen=True, slots=True)
class InstallPlan:
    """What to install. Paths of the unit and the config are as the host will see them."""

    manager: str
    command: Sequence[str]  # runs `ops-daemon`: the interpreter and the entry point
    state_dir: PurePosixPath = STATE_DIR
    enrollment_token: str | None = None
    trusted_keys: Sequence[Path] = ()
    manager_key: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)
    agent_port: int | None = None
    task_file_dirs: Sequence[PurePosixPath] = ()
    # More paths tasks may write (ProtectSystem=strict makes the rest read-only).
    writable: Sequence[PurePosixPath] = ()
    protect_system: bool = True


@dataclass(slots=True)
class Report:
    """What a run did: a line per path, and whether anything changed."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def note(self, path: Path, changed: bool, what: str = "") -> None:
        state = "written" if changed else "unchanged"
        self.lines.append(f"{state}: {path}{f' ({what})' if what else ''}")
        self.changed = self.changed or changed


Systemctl = Callable[[Sequence[str]], None]


def default_command() -> list[str]:
    """How this `ops-daemon` was started, for the unit's ExecStart: the package's entry point
    when it runs from an unpacked package (bin/daemon puts lib/ on PYTHONPATH), else the
    module with this interpreter."""
    import opscaffold.daemon

    lib = Path(opscaffold.daemon.__file__).resolve().parents[2]
    package = lib.parent
    if lib.name == LIB_DIR and (package / INFO_FILE).is_file():
        info = PackageInfo.model_validate_json((package / INFO_FILE).read_bytes())
        return [sys.executable, str(package / info.entry)]
    return [sys.executable, "-m", "opscaffold.daemon"]


def install(plan: InstallPlan, root: Path, systemctl: Systemctl | None = None) -> Report:
    """Write the unit, the config and the state directory under `root`; with `systemctl`
    (a live host), reload systemd, enable the service and (re)start it. Every file given is
    read and the settings are checked before anything is written."""
    tls = {name: _read(path, f"--tls-{name}") for name, path in _tls_files(plan).items()}
    for key_file in plan.trusted_keys:
        _read(key_file, "--trusted-key")
    manager_key = _read(plan.manager_key, "--manager-key") if plan.manager_key else None
    config = _config_document(plan)
    report = Report()
    state_dir = _under(root, plan.state_dir)
    private_dir(state_dir)
    _install_keys(plan.trusted_keys, manager_key, state_dir, report)
    config_dir = _under(root, CONFIG_DIR)
    private_dir(config_dir)
    _install_tls(tls, config_dir, report)
    _write(config_dir / CONFIG_FILE, config.encode(), 0o600, report)
    unit = unit_text(plan)
    _write(_under(root, UNIT_DIR) / UNIT_NAME, unit.encode(), 0o644, report)
    if systemctl is not None:
        systemctl(["daemon-reload"])
        systemctl(["enable", UNIT_NAME])
        systemctl(["restart" if report.changed else "start", UNIT_NAME])
    return report


def uninstall(
    root: Path,
    systemctl: Systemctl | None = None,
    *,
    purge: bool = False,
    state_dir: PurePosixPath = STATE_DIR,
) -> list[str]:
    """Stop and remove the service and its config; with `purge`, the state directory too
    (the node's identity: enrolling again makes a new node). Nothing there is fine."""
    removed = []
    unit = _under(root, UNIT_DIR) / UNIT_NAME
    if unit.exists():
        if systemctl is not None:  # systemctl refuses a unit it does not know
            systemctl(["disable", "--now", UNIT_NAME])
        unit.unlink()
        removed.append(str(unit))
    targets = [_under(root, CONFIG_DIR)] + ([_under(root, state_dir)] if purge else [])
    for directory in targets:
        if directory.exists():
            shutil.rmtree(directory)
            removed.append(str(directory))
    if systemctl is not None and removed:
        systemctl(["daemon-reload"])
    return removed


def unit_text(plan: InstallPlan) -> str:
    """The systemd unit. ProtectSystem=strict leaves the whole file system read-only but the
    state directory (downloads, installed agent and daemon packages, the Agent's journal),
    the file tasks' directories and whatever `writable` adds."""
    config = CONFIG_DIR / CONFIG_FILE
    command = " ".join(_quote(part) for part in [*plan.command, "run", "--config", str(config)])
    lines = [
        "# Written by `ops-daemon install`; run it again to change this file.",
        "[Unit]",
        "Description=Ops Scaffold node daemon",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={command}",
        "Environment=PYTHONUNBUFFERED=1",
        "Restart=always",
        "RestartSec=5",
        # 2: bad settings, 3: the Manager refused this node; restarting changes neither.
        "RestartPreventExitStatus=2 3",
        # SIGTERM to the daemon, which stops its Agent; what is left then gets SIGKILL.
        "KillMode=mixed",
        "TimeoutStopSec=30",
        "LimitNOFILE=65536",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ]
    if plan.protect_system:
        lines.append("ProtectSystem=strict")
        lines.append(f"ReadWritePaths={_quote(str(plan.state_dir))}")
        # "-": a directory missing at start is skipped instead of failing the service.
        lines += [f"ReadWritePaths=-{_quote(str(path))}" for path in _extra_writable(plan)]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def _extra_writable(plan: InstallPlan) -> list[PurePosixPath]:
    seen: list[PurePosixPath] = []
    for path in [*plan.task_file_dirs, *plan.writable]:
        if path not in seen and path != plan.state_dir:
            seen.append(path)
    return seen


def _tls_files(plan: InstallPlan) -> dict[str, Path]:
    files = {"ca": plan.tls_ca, "cert": plan.tls_cert, "key": plan.tls_key}
    return {name: path for name, path in files.items() if path is not None}


def _tls_target(name: str) -> PurePosixPath:
    return CONFIG_DIR / "tls" / f"{name}.pem"


def _config_document(plan: InstallPlan) -> str:
    """daemon.yaml, checked by the daemon's own settings model."""
    data: dict[str, object] = {"manager": plan.manager, "state_dir": str(plan.state_dir)}
    if plan.enrollment_token:
        data["enrollment_token"] = plan.enrollment_token
    if plan.agent_port is not None:
        data["agent_port"] = plan.agent_port
    if plan.labels:
        data["labels"] = dict(plan.labels)
    if plan.task_file_dirs:
        data["task_file_dirs"] = [str(path) for path in plan.task_file_dirs]
    tls = {name: str(_tls_target(name)) for name in _tls_files(plan)}
    if tls:
        data["tls"] = tls
    try:
        DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise InstallError(f"the daemon would refuse these settings: {exc}") from None
    header = "# Written by `ops-daemon install`; the keys are DaemonConfig's (daemon/config.py).\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def _install_tls(files: dict[str, bytes], config_dir: Path, report: Report) -> None:
    """Copies of the TLS files next to the config (the key 0600), so the originals can go."""
    if not files:
        return
    private_dir(config_dir / "tls")
    for name, data in files.items():
        target = config_dir / _tls_target(name).relative_to(CONFIG_DIR)
        _write(target, data, 0o600 if name == "key" else 0o644, report)


def _install_keys(
    trusted_keys: Sequence[Path], manager_key: bytes | None, state_dir: Path, report: Report
) -> None:
    """The package keys into the trust store and the task key pinned, as the daemon keeps
    them: it reads them from the state directory only."""
    trust = TrustStore(state_dir)
    trusted_before = set(trust.directory.glob("*.pem")) if trust.directory.is_dir() else set()
    try:
        fingerprints = trust.install(trusted_keys)
    except TrustedKeyError as exc:
        raise InstallError(str(exc)) from None
    for fingerprint in fingerprints:
        path = trust.directory / f"{fingerprint}.pem"
        report.note(path, path not in trusted_before, "a trusted package key")
    if manager_key is not None:
        store = TaskKeyStore(state_dir / AGENT_DIR)
        before = store.pinned()
        try:
            store.pin(manager_key)
        except TaskKeyError as exc:
            raise InstallError(str(exc)) from None
        report.note(store.path, before != manager_key, "the Manager's task key")


def _write(path: Path, data: bytes, mode: int, report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        same = path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode
    except FileNotFoundError:
        same = False
    if not same:
        write_private(path, data)  # atomic; created 0600, then given its mode
        path.chmod(mode)
    report.note(path, not same)


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InstallError(f"{option}: cannot read {path}: {exc.strerror}") from None


def _under(root: Path, path: PurePosixPath) -> Path:
    return root / path.relative_to("/")


def _quote(part: str) -> str:
    # systemd splits ExecStart= like a shell does on whitespace; quote what has any.
    if part and not any(c.isspace() or c in "\"'\\" for c in part):
        return part
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def live_systemctl() -> Systemctl | None:
    """systemctl on a host that runs systemd; None elsewhere (a container, a chroot)."""
    binary = shutil.which("systemctl")
    if binary is None or not Path("/run/systemd/system").is_dir():
        return None

    def run(arguments: Sequence[str]) -> None:
        result = subprocess.run(  # noqa: S603 - systemctl with our own arguments
            [binary, *arguments], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise InstallError(f"systemctl {' '.join(arguments)} failed: {detail}")

    return run


def require_root() -> None:
    if os.geteuid() != 0:
        raise InstallError(
            "this writes /etc/systemd/system, /etc/ops-daemon and the state directory: "
            "run it as root (sudo), or with --root DIR to write into DIR instead"
        )
