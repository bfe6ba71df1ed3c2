"""The Manager under test, once per database: migrated once, emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.db import database_url
from opscaffold.manager.kit.counters import MemoryCounters
from opscaffold.manager.models import Base, User
from opscaffold.manager.runtime import Runtime
from tests.conftest import require_service, slot_name, slot_redis_db

TEST_DB = slot_name("opscaffold_test")
ADMIN_PASSWORD = "Admin-Passw0rd!"
# Cheap argon2 for tests; production keeps the library default (config refuses lower there).
FAST_ARGON2 = {
    "OPS_AUTH__PASSWORD__ARGON2_TIME_COST": "1",
    "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "256",
    "OPS_AUTH__PASSWORD__ARGON2_PARALLELISM": "1",
}
REDIS_DB = {"mysql": slot_redis_db(1), "postgres": slot_redis_db(0)}
BACKENDS = ["sqlite", "mysql", "postgres"]


def backend_settings(backend: str, data_dir: Path, **extra: str) -> Settings:
    env = {
        "OPS_DATA_DIR": str(data_dir),
        "OPS_LOG__LEVEL": "warning",
        "OPS_SERVER__GRPC__ADDR": "127.0.0.1:0",
        "OPS_DASHBOARD__MAX_AGE": "1us",  # each test reads the figures it just made
        **FAST_ARGON2,
    }
    if backend == "mysql":
        env |= {
            "OPS_DATABASE__DRIVER": "mysql",
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__USER": "root",
            "OPS_DATABASE__NAME": TEST_DB,
        }
    elif backend == "postgres":
        env |= {
            "OPS_DATABASE__DRIVER": "postgres",
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__USER": "postgres",
            "OPS_DATABASE__NAME": TEST_DB,
        }
    if backend in REDIS_DB:  # the server databases run with Redis, SQLite without (embedded)
        env |= {"OPS_REDIS__ENABLED": "true", "OPS_REDIS__HOST": "127.0.0.1"}
        env["OPS_REDIS__DB"] = REDIS_DB[backend]
    return load_settings(None, env | extra)


async def recreate_database(settings: Settings) -> None:
    """Drop and create the test database (MySQL, PostgreSQL); SQLite starts from a new file."""
    if settings.database.driver == "sqlite":
        return
    admin_db = "mysql" if settings.database.driver == "mysql" else "postgres"
    engine = create_async_engine(
        database_url(settings.database, name=admin_db), isolation_level="AUTOCOMMIT"
    )
    quote = "`" if settings.database.driver == "mysql" else '"'
    name = f"{quote}{settings.database.name}{quote}"
    async with engine.connect() as conn:
        if settings.database.driver == "postgres":
            await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": settings.database.name},
            )
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        suffix = " CHARACTER SET utf8mb4" if settings.database.driver == "mysql" else ""
        await conn.execute(sa.text(f"CREATE DATABASE {name}{suffix}"))
    await engine.dispose()


@dataclass
class Stack:
    """One backend's running Manager: settings, runtime and app (lifespan entered)."""

    backend: str
    settings: Settings
    runtime: Runtime
    app: FastAPI
    admin_hash: str


@pytest.fixture(scope="session", params=BACKENDS)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend: str = request.param
    if backend != "sqlite":
        require_service(backend)
        require_service("redis")
    settings = backend_settings(backend, tmp_path_factory.mktemp(f"data-{backend}"))
    await recreate_database(settings)
    await _in_thread(migrate.upgrade, settings)
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    admin_hash = await runtime.hasher.hash(ADMIN_PASSWORD)
    async with app.router.lifespan_context(app):
        yield Stack(backend, settings, runtime, app, admin_hash)
    await runtime.close()


async def _in_thread(fn: Any, *args: Any) -> None:
    import asyncio

    # Alembic's env.py runs its own event loop; it cannot nest in the test's.
    await asyncio.to_thread(fn, *args)


# Rows the migrations seed and the Manager expects to find, as in a real database.
SEEDED = {"version_locks"}


async def empty_database(stack: Stack) -> None:
    """Delete every row (children first) and seed the admin: isolation without re-migrating."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in SEEDED]
    async with stack.runtime.engine.begin() as conn:
        if stack.backend == "postgres":
            await conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(sa.text(f"DELETE FROM {table}"))
        await conn.execute(
            sa.insert(User).values(
                username="admin", password_hash=stack.admin_hash, role="admin", status=1
            )
        )


async def reset_counters(stack: Stack) -> None:
    if stack.runtime.redis is not None:
        await stack.runtime.redis.flushdb()
    else:
        assert isinstance(stack.runtime.counters, MemoryCounters)
        stack.runtime.counters.clear()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    await empty_database(stack)
    await reset_counters(stack)
    transport = httpx.ASGITransport(app=stack.app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://manager") as http:
        yield http


async def login(
    http: httpx.AsyncClient, username: str = "admin", password: str = ADMIN_PASSWORD
) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await login(client))["token"])


async def make_user(
    http: httpx.AsyncClient,
    admin: dict[str, str],
    username: str,
    role: str = "viewer",
    password: str = "Str0ng-Password",
) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/system/users",
        json={"username": username, "password": password, "role": role},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()["data"]
    return user


async def redis_client(stack: Stack) -> Redis | None:
    return stack.runtime.redis
