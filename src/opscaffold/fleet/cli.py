"""`ops-fleet run`: simulate N daemons against a Manager; prints a JSON summary at the end."""

from __future__ import annotations

import asyncio
import logging
import signal
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from opscaffold.daemon.link import TlsFiles
from opscaffold.fleet.simulator import Fleet, FleetConfig, FleetError, dumps

app = typer.Typer(
    name="ops-fleet",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def fleet() -> None:
    """Ops Scaffold fleet simulator: many virtual daemons over real gRPC."""


class TransportChoice(StrEnum):
    connect = "connect"
    unary = "unary"


@app.command()
def run(
    manager: str = typer.Option(..., help="Manager gRPC address, HOST:PORT."),
    enrollment_token: str | None = typer.Option(
        None, envvar="OPS_FLEET_ENROLLMENT_TOKEN", help="Token for first registrations."
    ),
    nodes: int = typer.Option(..., min=1, help="Number of virtual nodes."),
    transport: TransportChoice = typer.Option(TransportChoice.connect, help="Stream or unary."),
    heartbeat_interval: float | None = typer.Option(
        None, help="Seconds; given (or --metric-interval), the Manager's intervals are ignored."
    ),
    metric_interval: float | None = typer.Option(None, help="Seconds; as --heartbeat-interval."),
    jitter: float = typer.Option(0.1, help="Random spread of each interval, ± fraction."),
    churn: float = typer.Option(0.0, help="Fraction of nodes that drop out per minute."),
    channels: int = typer.Option(16, min=1, help="gRPC channels shared by all nodes."),
    duration: float | None = typer.Option(None, help="Seconds to run (default: until Ctrl-C)."),
    ramp: float = typer.Option(10.0, help="Seconds over which nodes start."),
    state_file: Path | None = typer.Option(None, help="Keeps uuids and tokens across runs."),
    tls_ca: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Pinned CA of the Manager (turns TLS on)."
    ),
    update_failure_rate: float = typer.Option(
        0.0, help="Share of update orders that end failed or rollback (0..1)."
    ),
    update_seconds: float = typer.Option(
        5.0, help="Seconds an update takes from downloading to success (± jitter)."
    ),
    task_failure_rate: float = typer.Option(
        0.0, help="Share of task executions that fail with exit code 1 (0..1)."
    ),
    task_seconds: float = typer.Option(1.0, help="Seconds a task execution runs (± jitter)."),
    seed: int | None = typer.Option(None, help="Makes each node's updates go the same way."),
    trusted_key: list[Path] = typer.Option(
        [],
        exists=True,
        dir_okay=False,
        metavar="PEM",
        help="Public key (PEM) that update orders must be signed by; repeatable.",
    ),
    pin_metric: list[str] = typer.Option(
        [],
        metavar="FIELD=VALUE",
        help="Every node reports this metric field with this value (e.g. cpu_usage=97); "
        "repeatable.",
    ),
    log_level: str = typer.Option("error", help="debug, info, warning or error."),
) -> None:
    """Run the fleet; the JSON summary goes to stdout, logs to stderr."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options: dict[str, Any] = {
        "manager": manager,
        "enrollment_token": enrollment_token,
        "nodes": nodes,
        "transport": transport.value,
        "heartbeat_interval": heartbeat_interval,
        "metric_interval": metric_interval,
        "jitter": jitter,
        "churn": churn,
        "channels": channels,
        "duration": duration,
        "ramp": ramp,
        "state_file": state_file,
        "tls": TlsFiles(tls_ca) if tls_ca else None,
        "update_failure_rate": update_failure_rate,
        "update_seconds": update_seconds,
        "task_failure_rate": task_failure_rate,
        "task_seconds": task_seconds,
        "seed": seed,
        "trusted_keys": trusted_key,
        "pinned_metrics": _pins(pin_metric),
    }
    try:
        config = FleetConfig.model_validate(options)
    except ValidationError as exc:
        typer.echo(f"ops-fleet: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(dumps(asyncio.run(_run(config))))


def _pins(values: list[str]) -> dict[str, str]:
    pins = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep:
            typer.echo(f"ops-fleet: --pin-metric {value}: expected FIELD=VALUE", err=True)
            raise typer.Exit(2)
        pins[name.strip()] = number.strip()
    return pins


async def _run(config: FleetConfig) -> dict[str, Any]:
    try:
        fleet = Fleet(config)
    except FleetError as exc:
        typer.echo(f"ops-fleet: {exc}", err=True)
        raise typer.Exit(2) from exc
    task = asyncio.create_task(fleet.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        # Interrupted: the nodes are stopped and the state saved; report what happened.
        return fleet.summary()


def main() -> None:
    app()
