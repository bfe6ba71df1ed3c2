"""`ops-daemon`: run the node daemon, or (as the daemon does) the Agent.

Exit codes of `run`: 0 stopped by a signal, 1 unusable state directory, 2 bad settings,
3 the Manager refused this node's identity (deleted, revoked, or a bad enrollment token).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from enum import StrEnum
from pathlib import Path

import typer

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


@app.command("version")
def show_version() -> None:
    """Print the version of the daemon's code."""
    typer.echo(package_version())


def main() -> None:
    app()
