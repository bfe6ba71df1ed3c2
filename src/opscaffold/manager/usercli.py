"""The user commands of ops-manager, run against the database without the HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth.passwords import PasswordHasher
from opscaffold.manager.config import Settings
from opscaffold.manager.db import create_engine, session_factory, transaction
from opscaffold.manager.errors import DomainError
from opscaffold.manager.user import repository, service
from opscaffold.manager.user.schemas import UserCreate


@asynccontextmanager
async def _unit_of_work(settings: Settings) -> AsyncIterator[tuple[AsyncSession, PasswordHasher]]:
    """One transaction and a hasher; a domain error becomes a one-line message and exit 1."""
    engine = create_engine(settings.database)
    hasher = PasswordHasher(settings.auth.password)
    try:
        async with transaction(session_factory(engine)) as session:
            yield session, hasher
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        hasher.close()
        await engine.dispose()


async def create(
    settings: Settings, username: str, role: str, email: str | None, password: str
) -> None:
    try:
        data = UserCreate.model_validate(
            {"username": username, "role": role, "email": email, "password": SecretStr(password)}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"error: {first['loc'][0]}: {first['msg']}", err=True)
        raise typer.Exit(1) from exc
    async with _unit_of_work(settings) as (session, hasher):
        await service.create(session, data, hasher, settings.auth.password)


async def set_password(settings: Settings, username: str, password: str) -> None:
    async with _unit_of_work(settings) as (session, hasher):
        await service.set_password(session, username, password, hasher, settings.auth.password)


async def list_lines(settings: Settings) -> list[str]:
    async with _unit_of_work(settings) as (session, _):
        users = await repository.list_all(session)
    header = f"{'ID':>5}  {'USERNAME':<24} {'ROLE':<9} {'STATUS':<8} LAST LOGIN"
    rows = [
        f"{u.id:>5}  {u.username:<24} {u.role:<9} {'enabled' if u.status else 'disabled':<8} "
        f"{u.last_login_at.isoformat() + 'Z' if u.last_login_at else '-'}"
        for u in users
    ]
    return [header, *rows]
