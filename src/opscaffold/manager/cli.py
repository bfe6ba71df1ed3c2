"""ops-manager: serve, migrate, run-job, user, enrollment-token, keys, openapi,
config-reference."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime
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
keys_app = typer.Typer(help="Keys that sign release packages", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

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
    try:
        manager_app = create_app(settings)  # reads the signing keys: a bad one stops here
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(
        manager_app,
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


@app.command("config-reference")
def config_reference(
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Print the configuration reference (Markdown): every setting, its environment
    variable, type, default and description, from the Settings object."""
    from opscaffold.manager.configref import reference

    try:
        text = reference()
    except FileNotFoundError as exc:  # an installed Manager has no configs/ beside it
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
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


KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="a private key (PEM) instead of the Manager's signing key"),
]


@keys_app.command("generate")
def keys_generate(
    out: Annotated[
        Path | None,
        typer.Option(help="write a new key for an offline signer here instead"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create the Manager's signing key if it has none (it is also made at first start), or
    with --out a key pair for an offline signer; prints the fingerprint."""
    from opscaffold.manager.version import keycli

    typer.echo(keycli.generate(_settings(config), out))


@keys_app.command("list")
def keys_list(config: ConfigOption = None) -> None:
    """Fingerprints of the keys uploads may be signed with: the Manager's and trusted ones."""
    from opscaffold.manager.version import keycli

    for line in keycli.list_lines(_settings(config)):
        typer.echo(line)


@keys_app.command("export-public")
def keys_export_public(key: KeyOption = None, config: ConfigOption = None) -> None:
    """Print the public key (PEM) daemons are installed with to trust the packages."""
    from opscaffold.manager.version import keycli

    sys.stdout.write(keycli.export_public(_settings(config), key))


@keys_app.command("task-public-key")
def keys_task_public_key(config: ConfigOption = None) -> None:
    """Print the public key (PEM) of the key task envelopes are signed with, to pin on nodes
    (`ops-daemon run --manager-key`); the key is generated first if there is none yet."""
    from opscaffold.manager.task.keys import TaskKey

    sys.stdout.write(TaskKey.load(_settings(config)).public_pem.decode())


@keys_app.command("sign")
def keys_sign(
    file: Annotated[Path, typer.Argument(help="the package file")],
    component: Annotated[str, typer.Option(help="daemon or agent")],
    version: Annotated[str, typer.Option(help="like 1.4.2")],
    os_name: Annotated[str, typer.Option("--os", help="linux, darwin or windows")] = "linux",
    arch: Annotated[str, typer.Option(help="amd64, arm64, 386 or arm")] = "amd64",
    key: KeyOption = None,
    created_at: Annotated[
        datetime | None, typer.Option(help="the manifest's time (UTC); default: now")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Sign a package offline: prints its manifest and base64 signature as JSON; upload the
    file with `signature` and the manifest's `created_at` to POST /api/v1/versions."""
    from opscaffold.manager.version import keycli

    output = keycli.sign(
        _settings(config),
        file,
        component=component,
        version=version,
        os_name=os_name,
        arch=arch,
        key=key,
        created_at=created_at.replace(tzinfo=UTC) if created_at else None,
    )
    typer.echo(output)


def main() -> None:
    app()
