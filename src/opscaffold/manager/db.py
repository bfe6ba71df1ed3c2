"""Engine and sessions for the three supported databases."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import SessionTransactionOrigin

from opscaffold.manager.config import DatabaseSettings
from opscaffold.manager.kit.files import PRIVATE_FILE, private_file

SQLITE_POOL_WAIT_S = 60


def database_url(db: DatabaseSettings, *, name: str | None = None) -> URL:
    """The async URL for the configured driver; `name` overrides the database (tests, admin)."""
    if db.driver == "sqlite":
        return URL.create("sqlite+aiosqlite", database=str(db.path))
    drivername = "mysql+asyncmy" if db.driver == "mysql" else "postgresql+asyncpg"
    return URL.create(
        drivername,
        username=db.user,
        password=db.password.get_secret_value() or None,
        host=db.host,
        port=db.port,
        database=db.name if name is None else name,
        query={"charset": "utf8mb4"} if db.driver == "mysql" else {},
    )


def create_engine(db: DatabaseSettings) -> AsyncEngine:
    url = database_url(db)
    statement_s = db.statement_timeout.total_seconds()
    if db.driver == "sqlite":
        assert db.path is not None
        private_sqlite_files(db.path)
        # One connection: SQLite has a single writer, and writers queued on our pool wait
        # cheaply on the event loop, where writers racing for the file lock would sleep in
        # SQLite's busy handler and serialise far slower. A local file does not stall the way
        # a server does, so the queue may be long; the file lock waits statement_timeout.
        engine = create_async_engine(
            url,
            connect_args={"timeout": statement_s},
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_POOL_WAIT_S,
        )
        busy_ms = int(statement_s * 1000)
        sa.event.listen(
            engine.sync_engine, "connect", lambda conn, _: _sqlite_pragmas(conn, busy_ms)
        )
        return engine
    return create_async_engine(
        url,
        connect_args=_timeouts(db),
        pool_size=max(db.max_idle_conns, 1),
        max_overflow=max(db.max_open_conns - db.max_idle_conns, 0),
        pool_recycle=int(db.conn_max_lifetime.total_seconds()),
        pool_timeout=db.pool_timeout.total_seconds(),
        pool_pre_ping=True,
    )


def private_sqlite_files(path: Path) -> None:
    """Make the database file (password hashes, token digests) and its directory the owner's
    only, before SQLite opens it: SQLite gives its -wal and -shm files the database's mode."""
    private_file(path)
    for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if companion.exists():  # left by an earlier start, maybe with a wider mode
            os.chmod(companion, PRIVATE_FILE)


def _timeouts(db: DatabaseSettings) -> dict[str, float]:
    """Each driver's own bounds on connecting and on waiting for an answer: a stalled server
    then fails the statement (and the connection is dropped) instead of holding it forever."""
    connect_s = db.connect_timeout.total_seconds()
    statement_s = db.statement_timeout.total_seconds()
    if db.driver == "mysql":
        return {"connect_timeout": connect_s, "read_timeout": statement_s}
    return {"timeout": connect_s, "command_timeout": statement_s}


# The databases' own words for "unreachable, stalled or overloaded", as opposed to "this
# statement or row". MySQL/MariaDB error numbers: too many connections, lock wait timeout,
# can't connect, server gone away, connection lost during query, out of memory.
_MYSQL_UNAVAILABLE = frozenset({1037, 1040, 1041, 1205, 2002, 2003, 2006, 2013, 4031})
# PostgreSQL SQLSTATE classes: connection exception, insufficient resources, operator
# intervention (statement timeout, shutdown), system error.
_POSTGRES_UNAVAILABLE = ("08", "53", "57", "58")
_SQLITE_UNAVAILABLE = ("locked", "busy", "disk", "full", "unable to open")


def is_unavailable(error: BaseException) -> bool:
    """The database did not answer in time, could not be reached or is overloaded: no
    statement or row of ours caused it, and a retry later may succeed (503 / UNAVAILABLE)."""
    # asyncpg raises its timeouts and refused connections bare, past SQLAlchemy's wrapping;
    # sa.exc.TimeoutError: no free connection within pool_timeout.
    if isinstance(error, sa.exc.TimeoutError | sa.exc.InterfaceError | TimeoutError):
        return True
    if isinstance(error, ConnectionError):
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_POSTGRES_UNAVAILABLE)
    if isinstance(error.orig, sqlite3.OperationalError):
        return any(word in str(error.orig).lower() for word in _SQLITE_UNAVAILABLE)
    args: tuple[object, ...] = getattr(error.orig, "args", ())
    return bool(args) and args[0] in _MYSQL_UNAVAILABLE


def _sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def end_read(session: AsyncSession) -> None:
    """End a transaction that has only read, so its connection goes back to the pool during
    slow work that needs no database; the next statement begins a new transaction.

    On SQLite the pool holds the only connection: keeping it through an argon2 verification
    would stall every heartbeat and request behind one login. A unit of work begun explicitly
    (`transaction()`: the CLI, jobs, RPCs) is left to its owner, who decides when it ends.
    """
    current = session.sync_session.get_transaction()
    if current is None or current.origin is not SessionTransactionOrigin.AUTOBEGIN:
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("end_read would discard changes not yet written")
    await session.rollback()


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run a side effect (cache invalidation, a push to a daemon) once the change is committed."""
    session.info.setdefault("after_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop("after_commit", []):
        await callback()


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A unit of work outside a request (jobs, RPCs, CLI, start-up): commit on success, then
    run the side effects registered with `after_commit`."""
    async with sessions() as session:
        async with session.begin():
            yield session
        await run_after_commit(session)
