"""Alembic environment: async engines online, the MySQL DDL offline (scripts/init_db.sql)."""

from __future__ import annotations

import asyncio
import zlib

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from opscaffold.manager.metric.partitions import include_name
from opscaffold.manager.models import Base

config = context.config
target_metadata = Base.metadata
LOCK_NAME = "opscaffold_migrate"


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _lock(connection: Connection) -> None:
    """Whoever migrates first holds a database lock; other replicas wait, then find it done."""
    dialect = connection.dialect.name
    if dialect in ("mysql", "mariadb"):
        got = connection.execute(sa.text(f"SELECT GET_LOCK('{LOCK_NAME}', 600)")).scalar()
        if got != 1:
            raise RuntimeError("timed out waiting for the migration lock")
    elif dialect == "postgresql":
        key = zlib.crc32(LOCK_NAME.encode())
        connection.execute(sa.text(f"SELECT pg_advisory_lock({key})"))
    connection.commit()  # the lock is held by the session, not by this transaction


def _unlock(connection: Connection) -> None:
    dialect = connection.dialect.name
    if dialect in ("mysql", "mariadb"):
        connection.execute(sa.text(f"SELECT RELEASE_LOCK('{LOCK_NAME}')"))
    elif dialect == "postgresql":
        key = zlib.crc32(LOCK_NAME.encode())
        connection.execute(sa.text(f"SELECT pg_advisory_unlock({key})"))
    connection.commit()


def _migrate(connection: Connection) -> None:
    _lock(connection)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        _unlock(connection)


async def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        await connection.run_sync(_migrate)
        return
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
