"""The user and enrollment-token commands of ops-manager, run against the database directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import typer
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth.passwords import PasswordHasher
from opscaffold.manager.config import Settings
from opscaffold.manager.db import create_engine, session_factory, transaction
from opscaffold.manager.enrollment import repository as enrollment_repository
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate
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


async def create_token(
    settings: Settings, name: str, expires_in_days: int | None, max_uses: int | None
) -> str:
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    data = EnrollmentTokenCreate(name=name, expires_at=expires, max_uses=max_uses)
    async with _unit_of_work(settings) as (session, _):
        created = await enrollment_service.create(session, data, None)
    return created.token


async def revoke_token(settings: Settings, token_id: int) -> None:
    async with _unit_of_work(settings) as (session, _):
        await enrollment_service.revoke(session, token_id)


async def token_lines(settings: Settings) -> list[str]:
    async with _unit_of_work(settings) as (session, _):
        tokens = await enrollment_repository.list_all(session)
    header = f"{'ID':>5}  {'NAME':<24} {'PREFIX':<9} {'USES':>9} {'EXPIRES':<20} STATE"
    rows = [
        f"{t.id:>5}  {t.name:<24} {t.token_prefix:<9} "
        f"{str(t.uses) + ('/' + str(t.max_uses) if t.max_uses else ''):>9} "
        f"{t.expires_at.isoformat() + 'Z' if t.expires_at else 'never':<20} "
        f"{'revoked' if t.revoked_at else 'active'}"
        for t in tokens
    ]
    return [header, *rows]
