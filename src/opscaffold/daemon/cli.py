"""`ops-daemon`: run the node daemon, or (as the daemon does) the Agent; install it as a
systemd service on a host, or remove it.

Exit codes of `run`: 0 stopped by a signal, 1 unusable state directory, 2 bad settings,
3 the Manager refused this node's identity (deleted, revoked, or a bad enrollment token).
Exit codes of `install` and `uninstall`: 0 done, 1 refused (the message says why).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from enum import StrEnum
from pathlib import Path, PurePosixPath

import typer

from opscaffold.daemon import install as installer
from opscaffold.daemon import package_version
from opscaffold.daemon.agent.server import agent
from opscaffold.daemon.app import Daemon
from opscaffold.daemon.config import ConfigError, DaemonConfig, load_config, split_labels
from opscaffold.daemon.link import Fatal
from opscaffold.daemon.state import StateError

log = logging.getLogger("opscaffold.daemon")
app = typer.Typer(
    name="ops-daemon",
    help="Ops Scaffold node daemon: registers with the Manager, reports, supervises the Agent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("agent")(agent)
EXIT_STATE, EXIT_CONFIG, EXIT_REFUSED = 1, 2, 3


class TransportChoice(StrEnum):
    connect = "connect"
    unary = "unary"


@app.command()
def run(
    manager: str | None = typer.Option(None, help="Manager gRPC address, HOST:PORT."),
    enrollment_token: str | None = typer.Option(
        None, envvar="OPS_DAEMON_ENROLLMENT_TOKEN", help="Token for the first registration."
    ),
    state_dir: Path | None = typer.Option(None, help="Where node.json lives (./daemon-state)."),
    port: int | None = typer.Option(None, help="The Agent's port, registered (default 9100)."),
    config: Path | None = typer.Option(None, help="YAML file with these settings and more."),
    tls_ca: Path | None = typer.Option(None, help="Pinned CA of the Manager (turns TLS on)."),
    tls_cert: Path | None = typer.Option(None, help="Client certificate (mTLS)."),
    tls_key: Path | None = typer.Option(None, help="Client key (mTLS)."),
    transport: TransportChoice | None = typer.Option(None, help="Connect stream or unary calls."),
    labels: str | None = typer.Option(None, help="Node labels, k=v,k2=v2."),
    uuid: str | None = typer.Option(None, help="Fixed node uuid (mTLS: the certificate's)."),
    re_enroll: bool = typer.Option(
        False, "--re-enroll", help="Ignore the stored node token and enroll again (same uuid)."
    ),
    log_level: str | None = typer.Option(None, help="debug, info, warning or error."),
    trusted_key: list[Path] | None = typer.Option(
        None, help="PEM public key that may sign packages (repeatable; kept in the state dir)."
    ),
    manager_key: Path | None = typer.Option(
        None,
        help="The Manager's task-signing public key (PEM), pinned in the state dir; without "
        "one the key the Manager names at first enrollment is pinned.",
    ),
    task_file_dir: list[Path] | None = typer.Option(
        None, help="A directory file tasks may write under (repeatable)."
    ),
) -> None:
    """Register with the Manager, then heartbeat, report metrics and run the Agent."""
    try:
        settings = load_config(
            config,
            {
                "manager": manager,
                "enrollment_token": enrollment_token,
                "state_dir": state_dir,
                "agent_port": port,
                "tls.ca": tls_ca,
                "tls.cert": tls_cert,
                "tls.key": tls_key,
                "transport": transport.value if transport else None,
                "labels": split_labels(labels) if labels is not None else None,
                "uuid": uuid,
                "re_enroll": re_enroll or None,
                "log_level": log_level,
                "trusted_keys": trusted_key or None,
                "manager_key": manager_key,
                "task_file_dirs": task_file_dir or None,
            },
        )
    except ConfigError as exc:
        typer.echo(f"ops-daemon: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    raise typer.Exit(asyncio.run(_run(settings)))


async def _run(settings: DaemonConfig) -> int:
    task = asyncio.create_task(Daemon(settings).run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped")
        return 0
    except Fatal as exc:
        log.error("%s", exc)
        return EXIT_REFUSED
    except StateError as exc:
        log.error("%s", exc)
        return EXIT_STATE
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    return 0


RootOption = typer.Option(
    None,
    help="Write into this directory (an image or chroot being built) instead of /, and "
    "leave systemd alone. Without it: root only, and systemd is told.",
)
StateDirOption = typer.Option(
    Path(installer.STATE_DIR), help="The daemon's state directory, as the host sees it."
)


@app.command()
def install(
    manager: str = typer.Option(..., help="Manager gRPC address, HOST:PORT."),
    enrollment_token: str | None = typer.Option(
        None, envvar="OPS_DAEMON_ENROLLMENT_TOKEN", help="Token for the first registration."
    ),
    trusted_key: list[Path] | None = typer.Option(
        None, help="PEM public key that may sign packages (repeatable)."
    ),
    manager_key: Path | None = typer.Option(
        None, help="The Manager's task-signing public key (PEM), pinned now."
    ),
    tls_ca: Path | None = typer.Option(None, help="Pinned CA of the Manager (turns TLS on)."),
    tls_cert: Path | None = typer.Option(None, help="Client certificate (mTLS)."),
    tls_key: Path | None = typer.Option(None, help="Client key (mTLS)."),
    labels: str | None = typer.Option(None, help="Node labels, k=v,k2=v2."),
    port: int | None = typer.Option(None, help="The Agent's port (default 9100)."),
    task_file_dir: list[Path] | None = typer.Option(
        None, help="A directory file tasks may write under (repeatable; made writable)."
    ),
    writable: list[Path] | None = typer.Option(
        None, help="Another path tasks may write (repeatable); the rest of / is read-only."
    ),
    protect_system: bool = typer.Option(
        True,
        help="Make the file system read-only for the daemon and its tasks but the state "
        "directory and the paths above (ProtectSystem=strict). --no-protect-system for "
        "nodes whose tasks change the system anywhere.",
    ),
    state_dir: Path = StateDirOption,
    root: Path | None = RootOption,
) -> None:
    """Install the daemon as the systemd service ops-daemon: unit, config, state directory
    and keys. Safe to run again; the node's identity is kept."""
    plan = installer.InstallPlan(
        manager=manager,
        command=installer.default_command(),
        state_dir=_absolute(state_dir, "--state-dir"),
        enrollment_token=enrollment_token,
        trusted_keys=trusted_key or [],
        manager_key=manager_key,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        labels=_labels(labels),
        agent_port=port,
        task_file_dirs=[_absolute(p, "--task-file-dir") for p in task_file_dir or []],
        writable=[_absolute(p, "--writable") for p in writable or []],
        protect_system=protect_system,
    )
    try:
        target, systemctl = _target(root)
        report = installer.install(plan, target, systemctl)
    except installer.InstallError as exc:
        typer.echo(f"ops-daemon install: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in report.lines:
        typer.echo(line)
    if root is None and systemctl is None:
        config_file = installer.CONFIG_DIR / installer.CONFIG_FILE
        typer.echo(
            "systemd does not run here: start the daemon with "
            f"`{' '.join(plan.command)} run --config {config_file}`"
        )
    elif systemctl is not None:
        typer.echo(f"{installer.UNIT_NAME} enabled and running")


@app.command()
def uninstall(
    purge: bool = typer.Option(
        False, "--purge", help="Also remove the state directory: the node's identity goes."
    ),
    state_dir: Path = StateDirOption,
    root: Path | None = RootOption,
) -> None:
    """Stop and remove the ops-daemon service and its config; the state directory stays
    unless --purge. Safe to run again."""
    try:
        target, systemctl = _target(root)
        removed = installer.uninstall(
            target, systemctl, purge=purge, state_dir=_absolute(state_dir, "--state-dir")
        )
    except installer.InstallError as exc:
        typer.echo(f"ops-daemon uninstall: {exc}", err=True)
        raise typer.Exit(1) from exc
    for path in removed:
        typer.echo(f"removed: {path}")
    if not removed:
        typer.echo("nothing to remove")
    if not purge:
        typer.echo(f"kept: the state directory {state_dir} (--purge removes it)")


def _target(root: Path | None) -> tuple[Path, installer.Systemctl | None]:
    if root is not None:
        return root, None
    installer.require_root()
    return Path("/"), installer.live_systemctl()


def _absolute(path: Path, option: str) -> PurePosixPath:
    if not path.is_absolute():
        typer.echo(f"{option}: {path} must be an absolute path", err=True)
        raise typer.Exit(2)
    return PurePosixPath(path)


def _labels(text: str | None) -> dict[str, str]:
    try:
        return split_labels(text) if text is not None else {}
    except ConfigError as exc:
        typer.echo(f"--labels: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("version")
def show_version() -> None:
    """Print the version of the daemon's code."""
    typer.echo(package_version())


def main() -> None:
    app()
