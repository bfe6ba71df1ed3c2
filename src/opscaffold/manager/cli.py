"""ops-manager: serve, migrate, run-job, user, enrollment-token, openapi."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from opscaffold.manager.config import ConfigError, Settings, load_settings, split_addr

app = typer.Typer(help="Ops Scaffold Manager", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Manage users from the command line", no_args_is_help=True)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="Tokens that daemons enroll with", no_args_is_help=True)
app.add_typer(token_app, name="enrollment-token")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="OPS_CONFIG",
        help="YAML config file; without one the embedded default runs (SQLite, no Redis)",
    ),
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Start the Manager: HTTP API and UI, gRPC for daemons, background jobs."""
    from opscaffold.manager import tls as manager_tls

    settings = _settings(config)
    manager_tls.prepare_grpc(settings.tls)  # grpc reads its cipher list once, when imported

    import uvicorn

    from opscaffold.manager import logging as manager_logging
    from opscaffold.manager import migrate
    from opscaffold.manager.app import create_app
    from opscaffold.manager.limits import head_timeout_protocol

    try:
        manager_logging.configure(settings.log)
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    if settings.database.migrate_on_start(settings.env):
        migrate.upgrade(settings)
    host, port = split_addr(settings.server.http.addr)
    tls = settings.tls
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is read only from configured proxies
        server_header=False,
        timeout_graceful_shutdown=10,
        http=head_timeout_protocol(settings.server.http.read_timeout.total_seconds()),
        ssl_certfile=str(tls.cert_file) if tls.enabled and tls.cert_file else None,
        ssl_keyfile=str(tls.key_file) if tls.enabled and tls.key_file else None,
        ssl_context_factory=manager_tls.http_context_factory(tls),
    )


@app.command("migrate")
def migrate_cmd(
    config: ConfigOption = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
    downgrade: Annotated[bool, typer.Option(help="downgrade to REVISION instead")] = False,
    sql: Annotated[bool, typer.Option(help="print the MySQL DDL instead of migrating")] = False,
) -> None:
    """Migrate the database schema (holds a database lock while it runs)."""
    from opscaffold.manager import migrate

    settings = _settings(config)
    if sql:
        sys.stdout.write(migrate.mysql_ddl(settings))
        return
    if downgrade:
        migrate.downgrade(settings, revision)
    else:
        migrate.upgrade(settings, revision)
    typer.echo(f"database at {'revision ' + revision if downgrade else 'head'}")


@app.command("run-job")
def run_job(
    name: Annotated[str | None, typer.Argument(help="the job to run; none: list them")] = None,
    config: ConfigOption = None,
) -> None:
    """Run one background job now, once, as a replica would; without a name, list the jobs."""
    from opscaffold.manager import logging as manager_logging
    from opscaffold.manager.app import all_jobs
    from opscaffold.manager.jobs.runner import run_now
    from opscaffold.manager.rpc.server import replica_id

    jobs = all_jobs()
    if name is None:
        for job in sorted(jobs):
            typer.echo(job)
        return
    if name not in jobs:
        typer.echo(f"no job '{name}'; jobs: {', '.join(sorted(jobs))}", err=True)
        raise typer.Exit(2)
    settings = _settings(config)
    manager_logging.configure(settings.log)
    if not asyncio.run(run_now(settings, jobs[name], replica_id())):
        typer.echo(f"{name}: this tick is taken by another replica; try again", err=True)
        raise typer.Exit(1)
    typer.echo(f"{name}: done")


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
) -> None:
    """Print the OpenAPI document of the API."""
    from opscaffold.manager.app import create_app

    settings = load_settings(None, {"OPS_DATA_DIR": "/nonexistent-openapi-only"})
    document = create_app(settings, build_only=True).openapi()
    text = (
        json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if fmt == "json"
        else yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def _ask_password(password: str | None) -> str:
    if password:
        return password
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        typer.echo("passwords differ", err=True)
        raise typer.Exit(1)
    return first


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "viewer",
    email: Annotated[str | None, typer.Option()] = None,
    password: Annotated[str | None, typer.Option(envvar="OPS_USER_PASSWORD")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a user (asks for the password unless given)."""
    from opscaffold.manager import usercli

    settings = _settings(config)
    asyncio.run(usercli.create(settings, username, role, email, _ask_password(password)))
    typer.echo(f"created user '{username}' ({role})")


@user_app.command("set-password")
def user_set_password(
    username: str,
    password: Annotated[str | None, typer.Option(envvar="OPS_USER_PASSWORD")] = None,
    config: ConfigOption = None,
) -> None:
    """Set a user's password and end their sessions."""
    from opscaffold.manager import usercli

    settings = _settings(config)
    asyncio.run(usercli.set_password(settings, username, _ask_password(password)))
    typer.echo(f"password of '{username}' changed")


@user_app.command("list")
def user_list(config: ConfigOption = None) -> None:
    """List users."""
    from opscaffold.manager import usercli

    for line in asyncio.run(usercli.list_lines(_settings(config))):
        typer.echo(line)


@token_app.command("create")
def token_create(
    name: str,
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="none: never")] = None,
    max_uses: Annotated[int | None, typer.Option(min=1, help="none: unlimited")] = None,
    config: ConfigOption = None,
) -> None:
    """Create an enrollment token and print it (it is shown only once)."""
    from opscaffold.manager import usercli

    token = asyncio.run(usercli.create_token(_settings(config), name, expires_in_days, max_uses))
    typer.echo(token)


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """List enrollment tokens (their prefixes, never the secrets)."""
    from opscaffold.manager import usercli

    for line in asyncio.run(usercli.token_lines(_settings(config))):
        typer.echo(line)


@token_app.command("revoke")
def token_revoke(token_id: int, config: ConfigOption = None) -> None:
    """Revoke an enrollment token: daemons can no longer enroll with it."""
    from opscaffold.manager import usercli

    asyncio.run(usercli.revoke_token(_settings(config), token_id))
    typer.echo(f"enrollment token {token_id} revoked")


def main() -> None:
    app()
