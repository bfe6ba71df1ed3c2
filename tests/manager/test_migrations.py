"""Migrations on SQLite, MariaDB and PostgreSQL: round trip, schema = models, the spec's MySQL
details, scripts/init_db.sql, the migration lock, and `ops-manager migrate`."""

from __future__ import annotations

import ast
import asyncio
import fcntl
import os
import re
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from opscaffold.manager import migrate
from opscaffold.manager.config import Settings, load_settings
from opscaffold.manager.db import database_url
from opscaffold.manager.metric import partitions, rollup
from opscaffold.manager.metric.partitions import include_name
from opscaffold.manager.models import Base, Node, NodeMetric, NodeTag, User, metric_rollup_pending
from tests.conftest import require_service, slot_name
from tests.helpers import wait_until
from tests.manager.conftest import recreate_database
from tests.manager.factories import node_row

# Our own databases: the API suite's opscaffold_test is never touched.
MIGTEST_DB = slot_name("opscaffold_migtest")
BACKENDS = ["sqlite", "mysql", "postgres"]
REPO = Path(__file__).resolve().parents[2]
OPS_MANAGER = Path(sys.executable).parent / "ops-manager"
MODEL_TABLES = set(Base.metadata.tables)
MIGRATED_TABLES = MODEL_TABLES | {"alembic_version"}
LOCK_NAME = "opscaffold_migrate"  # the database lock env.py takes
HEAD = ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()
CLI_TIMEOUT = 30.0
T = TypeVar("T")

SPEC_TABLES = {
    "users",
    "node_groups",
    "nodes",
    "agents",
    "node_metrics",
    "versions",
    "update_records",
    "tasks",
    "task_executions",
    "audit_logs",
    "alert_rules",
    "alerts",
}
SPEC_UPDATED_AT = {"users", "node_groups", "nodes", "agents", "tasks", "alert_rules"}
SPEC_UNIQUE = {
    "users": {"uk_username": ["username"], "uk_email": ["email"]},
    "nodes": {"uk_uuid": ["uuid"]},
    "agents": {"uk_node_id": ["node_id"]},
    "versions": {"uk_component_version_os_arch": ["component", "version", "os", "arch"]},
    "audit_logs": {"uk_fold_key": ["fold_key"]},
}
# (table, column): (COLUMN_TYPE, nullable, default), as spec §3.2 writes them.
SPEC_COLUMNS = {
    ("users", "role"): ("enum('admin','operator','viewer')", False, "viewer"),
    ("users", "status"): ("tinyint", False, "1"),
    ("users", "email"): ("varchar(128)", True, None),
    ("nodes", "status"): ("enum('online','offline','unknown')", False, "unknown"),
    ("nodes", "port"): ("int", False, "9100"),
    ("agents", "cpu_usage"): ("decimal(5,2)", True, None),
    ("node_metrics", "cpu_usage"): ("decimal(5,2)", True, None),
    ("node_metrics", "timestamp"): ("datetime", False, None),
    ("versions", "os"): ("varchar(32)", False, "linux"),
    ("versions", "is_latest"): ("tinyint", False, "0"),
    ("versions", "signature"): ("text", False, None),
    ("update_records", "status"): (
        "enum('pending','downloading','installing','verifying','success','failed','rollback')",
        False,
        "pending",
    ),
    ("tasks", "timeout"): ("int", False, "300"),
    ("task_executions", "output"): ("mediumtext", True, None),
    ("audit_logs", "status"): ("enum('success','failed')", False, "success"),
    ("alert_rules", "operator"): ("enum('gt','gte','lt','lte','eq','ne')", False, None),
    # Wider than the spec's DECIMAL(10,2), which cannot hold a byte-count threshold.
    ("alert_rules", "threshold"): ("decimal(20,2)", False, None),
}


@dataclass
class MigrationDb:
    """An empty database of one backend, as settings and as the OPS_* variables naming it."""

    backend: str
    env: dict[str, str]
    settings: Settings


def db_env(backend: str, data_dir: Path, name: str) -> dict[str, str]:
    env = {"OPS_DATA_DIR": str(data_dir)}
    if backend != "sqlite":
        env |= {
            "OPS_DATABASE__DRIVER": backend,
            "OPS_DATABASE__HOST": "127.0.0.1",
            "OPS_DATABASE__USER": "root" if backend == "mysql" else "postgres",
            "OPS_DATABASE__NAME": name,
        }
    return env


async def fresh_database(backend: str, data_dir: Path, name: str = MIGTEST_DB) -> MigrationDb:
    if backend != "sqlite":
        require_service(backend)
    env = db_env(backend, data_dir, name)
    settings = load_settings(None, env)
    await recreate_database(settings)
    return MigrationDb(backend, env, settings)


@pytest.fixture(params=BACKENDS)
async def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> MigrationDb:
    return await fresh_database(request.param, tmp_path)


@pytest.fixture(scope="module")
async def mariadb_at_head(tmp_path_factory: pytest.TempPathFactory) -> MigrationDb:
    """One MariaDB database migrated online, read (never written) by the MariaDB-only tests."""
    db = await fresh_database("mysql", tmp_path_factory.mktemp("mariadb"), f"{MIGTEST_DB}_head")
    await upgrade(db.settings)
    return db


# Alembic's env.py runs its own event loop, so migrations run in a thread.
async def upgrade(settings: Settings) -> None:
    await asyncio.to_thread(migrate.upgrade, settings)


async def downgrade(settings: Settings, revision: str) -> None:
    await asyncio.to_thread(migrate.downgrade, settings, revision)


@asynccontextmanager
async def connect(settings: Settings, **engine_options: Any) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(database_url(settings.database), **engine_options)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def run_sync(settings: Settings, fn: Callable[[Connection], T]) -> T:
    async with connect(settings) as conn:
        return await conn.run_sync(fn)


async def table_names(settings: Settings) -> set[str]:
    return set(await run_sync(settings, lambda conn: sa.inspect(conn).get_table_names()))


async def versions(settings: Settings) -> list[str]:
    """The rows of alembic_version (none when the table is missing)."""

    def read(conn: Connection) -> list[str]:
        if not sa.inspect(conn).has_table("alembic_version"):
            return []
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())

    return await run_sync(settings, read)


async def assert_at_head(settings: Settings) -> None:
    assert await table_names(settings) == MIGRATED_TABLES
    assert await versions(settings) == [HEAD]


def migrated_index_name(table: str, name: str, dialect: str) -> str:
    """The name the migration gives a model index (helpers.ix): MySQL scopes index names per
    table, PostgreSQL and SQLite per schema, so there the table name qualifies them."""
    if dialect in ("mysql", "mariadb") or table in name:
        return name
    return f"{table}_{name}"


def models_as_migrated(dialect: str) -> sa.MetaData:
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    for table in metadata.tables.values():
        for index in table.indexes:
            assert index.name is not None
            index.name = sa.sql.quoted_name(
                migrated_index_name(table.name, index.name, dialect), None
            )
    return metadata


def is_mysql_on_update(diff: tuple[Any, ...]) -> bool:
    # A model's server_default cannot carry MySQL's ON UPDATE (the ORM sets updated_at instead);
    # the migration adds it because the spec's DDL has it.
    return (
        diff[0] == "modify_default"
        and diff[3] == "updated_at"
        and "on update current_timestamp" in str(diff[5].arg).lower()
    )


def schema_diff(conn: Connection) -> list[tuple[Any, ...]]:
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": include_name,
        },
    )
    diffs = compare_metadata(context, models_as_migrated(conn.dialect.name))
    # Column changes come as one list per column.
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    return [d for d in flat if not is_mysql_on_update(d)]


def reflect_schema(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each model table's columns, keys, indexes and constraints, as the database has them."""
    inspector = sa.inspect(conn)
    schema = {}
    for table in MODEL_TABLES:
        unique = {uc["name"]: uc["column_names"] for uc in inspector.get_unique_constraints(table)}
        schema[table] = {
            "columns": [(c["name"], c["nullable"]) for c in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            # MySQL has unique indexes only, so a unique constraint is reflected as both.
            "indexes": {
                ix["name"]: (ix["column_names"], bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
                if ix["name"] not in unique
            },
            "unique": unique,
            "foreign_keys": {
                fk["name"]: (
                    fk["constrained_columns"],
                    fk["referred_table"],
                    fk["referred_columns"],
                    (fk["options"].get("ondelete") or "").upper(),
                )
                for fk in inspector.get_foreign_keys(table)
            },
        }
    return schema


def model_schema(dialect: str) -> dict[str, dict[str, Any]]:
    mysql = dialect in ("mysql", "mariadb")
    schema = {}
    for name, table in Base.metadata.tables.items():
        schema[name] = {
            "columns": [(c.name, c.nullable) for c in table.columns],
            "primary_key": [c.name for c in table.primary_key.columns],
            "indexes": {
                migrated_index_name(name, str(ix.name), dialect): (
                    [c.name for c in ix.columns],
                    bool(ix.unique),
                )
                for ix in table.indexes
                if not (mysql and ix.unique)
            },
            "unique": {
                str(uc.name): [c.name for c in uc.columns]
                for uc in table.constraints
                if isinstance(uc, sa.UniqueConstraint)
            }
            # MySQL reflects a unique index as a unique constraint too (see reflect_schema).
            | {
                str(ix.name): [c.name for c in ix.columns]
                for ix in table.indexes
                if mysql and ix.unique
            },
            "foreign_keys": {
                str(fk.name): (
                    [c.name for c in fk.columns],
                    fk.referred_table.name,
                    [e.column.name for e in fk.elements],
                    (fk.ondelete or "").upper(),
                )
                for fk in table.foreign_key_constraints
            },
        }
    return schema


# --- round trip, and the schema the migration builds ---------------------------------------------


@pytest.mark.db_matrix
async def test_upgrade_downgrade_upgrade_round_trip(fresh_db: MigrationDb) -> None:
    settings = fresh_db.settings
    await upgrade(settings)
    await assert_at_head(settings)

    await downgrade(settings, "base")
    assert await table_names(settings) <= {"alembic_version"}
    assert await versions(settings) == []

    def sequences(conn: Connection) -> list[str]:
        if not conn.dialect.supports_sequences:
            return []
        return sa.inspect(conn).get_sequence_names()

    assert await run_sync(settings, sequences) == []

    await upgrade(settings)
    await assert_at_head(settings)


@pytest.mark.db_matrix
async def test_schema_equals_the_models(fresh_db: MigrationDb) -> None:
    """Alembic's autogenerate comparison (types and server defaults included) finds nothing,
    once model index names are qualified as the migration qualifies them off MySQL."""
    await upgrade(fresh_db.settings)
    assert await run_sync(fresh_db.settings, schema_diff) == []


@pytest.mark.db_matrix
async def test_tables_columns_keys_and_constraints_match_the_models(
    fresh_db: MigrationDb,
) -> None:
    await upgrade(fresh_db.settings)
    dialect = await run_sync(fresh_db.settings, lambda conn: conn.dialect.name)
    actual = await run_sync(fresh_db.settings, reflect_schema)
    expected = model_schema(dialect)

    assert actual.keys() == expected.keys()
    for table in sorted(expected):
        assert actual[table] == expected[table], table
    for table, constraints in SPEC_UNIQUE.items():
        assert actual[table]["unique"].items() >= constraints.items(), table
    assert actual["agents"]["foreign_keys"]["fk_agents_node"] == (
        ["node_id"],
        "nodes",
        ["id"],
        "CASCADE",
    )


# --- MariaDB: the spec's DDL details -------------------------------------------------------------


async def mysql_columns(settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    async with connect(settings) as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE,"
                " COLUMN_DEFAULT, COLUMN_KEY, EXTRA FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE()"
            )
        )
        return {(r.TABLE_NAME, r.COLUMN_NAME): dict(r._mapping) for r in rows}


def spec_form(column: dict[str, Any]) -> tuple[str, bool, str | None]:
    """(type, nullable, default) without MariaDB's integer display widths and quoting."""
    column_type = re.sub(r"^(tinyint|smallint|int|bigint)\(\d+\)", r"\1", column["COLUMN_TYPE"])
    default = column["COLUMN_DEFAULT"]
    default = None if default in (None, "NULL") else default.strip("'")
    return column_type, column["IS_NULLABLE"] == "YES", default


async def test_mariadb_collations_are_those_of_the_models(mariadb_at_head: MigrationDb) -> None:
    """Columns the models compare byte for byte (usernames, tags, labels) are so in the
    migrated schema too: Alembic's own comparison does not look at collations."""
    wanted = {}
    for table in Base.metadata.tables.values():
        for column in table.c:
            mysql_type = column.type.dialect_impl(mysql.dialect())
            if collation := getattr(mysql_type, "collation", None):
                wanted[(table.name, column.name)] = collation
    assert {("node_labels", "key"), ("node_labels", "value"), ("node_tags", "tag")} <= set(wanted)
    async with connect(mariadb_at_head.settings) as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = DATABASE()"
            )
        )
        actual = {(r.TABLE_NAME, r.COLUMN_NAME): r.COLLATION_NAME for r in rows}
    assert {key: actual[key] for key in wanted} == wanted


async def test_mariadb_column_types_and_defaults_follow_the_spec(
    mariadb_at_head: MigrationDb,
) -> None:
    columns = await mysql_columns(mariadb_at_head.settings)
    actual = {key: spec_form(columns[key]) for key in SPEC_COLUMNS}
    assert actual == SPEC_COLUMNS


async def test_mariadb_ids_are_unsigned_auto_increment_and_updated_at_auto_updates(
    mariadb_at_head: MigrationDb,
) -> None:
    columns = await mysql_columns(mariadb_at_head.settings)
    # Raw metrics are keyed by (node_id, timestamp): a partitioned table needs the time in
    # every unique key, and a surrogate id would only add a second index to every insert.
    assert ("node_metrics", "id") not in columns
    assert columns["node_metrics", "node_id"]["COLUMN_KEY"] == "PRI"
    assert columns["node_metrics", "timestamp"]["COLUMN_KEY"] == "PRI"
    for table in sorted(SPEC_TABLES - {"node_metrics"}):
        id_column = columns[table, "id"]
        assert id_column["DATA_TYPE"] == "bigint", table
        assert id_column["COLUMN_TYPE"].endswith(" unsigned"), table
        assert id_column["EXTRA"] == "auto_increment", table
        assert id_column["COLUMN_KEY"] == "PRI", table
    updated_at = {
        table
        for (table, column), row in columns.items()
        if column == "updated_at" and "on update current_timestamp" in row["EXTRA"].lower()
    }
    assert updated_at >= SPEC_UPDATED_AT


async def test_mariadb_tables_are_innodb_utf8mb4_and_agents_cascade_with_their_node(
    mariadb_at_head: MigrationDb,
) -> None:
    async with connect(mariadb_at_head.settings) as conn:
        tables = (
            await conn.execute(
                sa.text(
                    "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE()"
                )
            )
        ).all()
        fk = (
            await conn.execute(
                sa.text(
                    "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME,"
                    " k.REFERENCED_COLUMN_NAME, r.DELETE_RULE"
                    " FROM information_schema.KEY_COLUMN_USAGE k"
                    " JOIN information_schema.REFERENTIAL_CONSTRAINTS r"
                    "  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA"
                    "  AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME"
                    " WHERE k.CONSTRAINT_SCHEMA = DATABASE()"
                    " AND k.CONSTRAINT_NAME = 'fk_agents_node'"
                )
            )
        ).all()
    assert {t.TABLE_NAME for t in tables} == MIGRATED_TABLES
    for table in tables:
        assert table.ENGINE == "InnoDB", table.TABLE_NAME
        assert table.TABLE_COLLATION.startswith("utf8mb4_"), table.TABLE_NAME
    assert [tuple(row) for row in fk] == [("agents", "node_id", "nodes", "id", "CASCADE")]


# --- scripts/init_db.sql -------------------------------------------------------------------------


def sql_statements(script: str) -> list[str]:
    code = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", code, flags=re.MULTILINE) if s.strip()]


async def show_create_tables(settings: Settings) -> dict[str, str]:
    async with connect(settings) as conn:
        names = (await conn.execute(sa.text("SHOW TABLES"))).scalars().all()
        return {
            name: (await conn.execute(sa.text(f"SHOW CREATE TABLE `{name}`"))).one()[1]
            for name in names
        }


async def test_init_db_sql_is_current_and_loads_into_an_empty_mariadb(
    mariadb_at_head: MigrationDb, tmp_path: Path
) -> None:
    script = (REPO / "scripts" / "init_db.sql").read_text()
    generated = await asyncio.to_thread(migrate.mysql_ddl, mariadb_at_head.settings)
    assert script == generated, "scripts/init_db.sql is stale: run `make initdb`"

    loaded = await fresh_database("mysql", tmp_path, f"{MIGTEST_DB}_sql")
    statements = sql_statements(script)
    assert statements[0].startswith("CREATE TABLE alembic_version")
    async with connect(loaded.settings) as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)
        await conn.commit()

    assert await versions(loaded.settings) == [HEAD]
    assert await show_create_tables(loaded.settings) == await show_create_tables(
        mariadb_at_head.settings
    )


# --- concurrent migrators ------------------------------------------------------------------------


@pytest.mark.db_matrix
async def test_concurrent_upgrades_in_one_process_both_succeed(fresh_db: MigrationDb) -> None:
    await asyncio.gather(upgrade(fresh_db.settings), upgrade(fresh_db.settings))
    await assert_at_head(fresh_db.settings)


@asynccontextmanager
async def holding_the_migration_lock(
    db: MigrationDb,
) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Hold the lock every migrator takes first; yield how many migrators wait for it now."""
    if db.backend == "sqlite":
        if not Path("/proc/locks").exists():
            pytest.skip("needs /proc/locks to see who waits for the file lock")
        assert db.settings.database.path is not None
        lock_file = Path(f"{db.settings.database.path}.migrate.lock")  # migrate._sqlite_lock's
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with lock_file.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            inode = os.fstat(handle.fileno()).st_ino

            async def waiting_for_file() -> int:
                locks = Path("/proc/locks").read_text().splitlines()
                return sum(1 for line in locks if " -> " in line and f":{inode} " in line)

            yield waiting_for_file
        return

    if db.backend == "mysql":
        take = sa.text(f"SELECT GET_LOCK('{LOCK_NAME}', 30)")
        release = sa.text(f"SELECT RELEASE_LOCK('{LOCK_NAME}')")
        waiters = sa.text(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = DATABASE() AND STATE = 'User lock'"
        )
    else:
        key = zlib.crc32(LOCK_NAME.encode())
        take = sa.text(f"SELECT pg_advisory_lock({key}) IS NOT NULL")
        release = sa.text(f"SELECT pg_advisory_unlock({key})")
        waiters = sa.text(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            f" WHERE l.locktype = 'advisory' AND l.objid::bigint = {key} AND NOT l.granted"
            " AND d.datname = current_database()"
        )
    async with connect(db.settings, isolation_level="AUTOCOMMIT") as conn:
        assert (await conn.execute(take)).scalar_one() in (1, True)

        async def waiting_in_database() -> int:
            count: int = (await conn.execute(waiters)).scalar_one()
            return count

        try:
            yield waiting_in_database
        finally:
            await conn.execute(release)


def cli_environment(env: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OPS_")}
    return inherited | env


async def start_cli(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(OPS_MANAGER),
        *args,
        env=cli_environment(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await finish(await start_cli(env, *args))


@pytest.mark.db_matrix
@pytest.mark.e2e
async def test_racing_migrator_processes_wait_for_the_lock_and_migrate_once(
    fresh_db: MigrationDb,
) -> None:
    """Two `ops-manager migrate` (two replicas) queue on the lock; released, both succeed."""
    migrators: list[asyncio.subprocess.Process] = []
    try:
        async with holding_the_migration_lock(fresh_db) as waiting:
            migrators = [await start_cli(fresh_db.env, "migrate") for _ in range(2)]

            async def both_waiting() -> bool:
                for migrator in migrators:
                    if migrator.returncode is not None:
                        code, out, err = await finish(migrator)
                        pytest.fail(f"a migrator exited early ({code}): {out}{err}")
                return await waiting() == 2

            await wait_until(
                both_waiting, timeout=CLI_TIMEOUT, what="both migrators wait for the lock"
            )
            assert await table_names(fresh_db.settings) <= {"alembic_version"}
        for migrator in migrators:
            code, out, err = await finish(migrator)
            assert code == 0, err
            assert "database at head" in out
    finally:
        for migrator in migrators:
            if migrator.returncode is None:
                migrator.kill()
                await migrator.wait()
    await assert_at_head(fresh_db.settings)


# --- the CLI -------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_cli_migrates_sqlite_to_head_and_back_to_base(tmp_path: Path) -> None:
    env = {"OPS_DATA_DIR": str(tmp_path)}
    settings = load_settings(None, env)

    code, out, err = await run_cli(env, "migrate")
    assert code == 0, err
    assert "database at head" in out
    await assert_at_head(settings)

    code, out, err = await run_cli(env, "migrate", "--downgrade", "--revision", "base")
    assert code == 0, err
    assert await table_names(settings) <= {"alembic_version"}
    assert await versions(settings) == []


@pytest.mark.e2e
async def test_cli_prints_the_mysql_ddl_without_touching_a_database(tmp_path: Path) -> None:
    env = {"OPS_DATA_DIR": str(tmp_path)}
    code, out, err = await run_cli(env, "migrate", "--sql")
    assert code == 0, err
    assert out.startswith("CREATE TABLE ")
    assert out == await asyncio.to_thread(migrate.mysql_ddl, load_settings(None, env))
    assert not (tmp_path / "manager.db").exists()


# --- moving node_metrics to day partitions (0004) keeps its data ----------------------------


@pytest.mark.db_matrix
async def test_partitioning_node_metrics_keeps_recent_rows_and_queues_their_rollups(
    fresh_db: MigrationDb,
) -> None:
    settings = fresh_db.settings
    await asyncio.to_thread(migrate.upgrade, settings, "0003")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    times = [now - timedelta(minutes=7), now - timedelta(days=1, minutes=3), now]
    expired = now - timedelta(days=45)  # older than any retention: not copied
    legacy = sa.table(
        "node_metrics",
        sa.column("node_id"),
        sa.column("cpu_usage"),
        sa.column("memory_used"),
        sa.column("timestamp", sa.DateTime),
    )
    rows = [
        {"node_id": 7, "cpu_usage": 10.5 + i, "memory_used": 1000 * i, "timestamp": at}
        for i, at in enumerate([*times, expired])
    ]
    async with connect(settings) as conn:
        await conn.execute(sa.insert(legacy), rows)
        await conn.commit()

    await upgrade(settings)

    raw = NodeMetric.__table__.c
    async with connect(settings) as conn:
        stored = await conn.execute(
            sa.select(raw.timestamp, raw.cpu_usage, raw.memory_used).order_by(raw.timestamp)
        )
        assert [tuple(r) for r in stored] == sorted(
            (r["timestamp"], r["cpu_usage"], r["memory_used"]) for r in rows[:3]
        )
        queued = set(await conn.scalars(sa.select(metric_rollup_pending.c.bucket)))
        assert queued == {rollup.bucket_of(at) for at in times}
        days = await conn.run_sync(partitions.existing_days, partitions.RAW)
    if fresh_db.backend != "sqlite":
        assert {at.date() for at in times} <= set(days)

    await downgrade(settings, "0003")
    async with connect(settings) as conn:
        count = await conn.scalar(sa.text("SELECT COUNT(*) FROM node_metrics"))
    assert count == 3


def test_migrations_import_no_live_code() -> None:
    """An applied migration must not change when the Manager's code does: it may use only
    what the migrations package keeps for itself."""
    versions = Path(migrate.__file__).parent / "migrations" / "versions"
    for path in sorted(versions.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opscaffold"):
                assert node.module == "opscaffold.manager.migrations.helpers", (
                    path.name,
                    node.module,
                )
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("opscaffold") for a in node.names), path.name


# --- commands that fail (0005) --------------------------------------------------------------------


@pytest.mark.db_matrix
async def test_commands_can_end_failed_and_a_downgrade_folds_them_into_done(
    fresh_db: MigrationDb,
) -> None:
    settings = fresh_db.settings
    await upgrade(settings)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    commands = sa.table(
        "node_commands",
        *(sa.column(c) for c in ("id", "node_id", "type", "state", "error")),
        sa.column("payload", sa.JSON),
        sa.column("created_at", sa.DateTime),
        sa.column("expires_at", sa.DateTime),
    )

    def command(command_id: str, state: str, error: str | None = None) -> dict[str, Any]:
        return {
            "id": command_id,
            "node_id": 1,
            "type": "config",
            "payload": {},
            "state": state,
            "error": error,
            "created_at": now,
            "expires_at": now,
        }

    async with connect(settings) as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO nodes (id, uuid, hostname, ip) VALUES (1, 'u-1', 'n1', '10.0.0.1')"
            )
        )
        await conn.execute(sa.insert(commands), [command("c-1", "failed", "bad interval")])
        await conn.commit()
        with pytest.raises(sa.exc.DBAPIError):
            await conn.execute(sa.insert(commands), [command("c-2", "lost")])
        await conn.rollback()

    await downgrade(settings, "0004")
    async with connect(settings) as conn:
        assert await conn.scalar(sa.text("SELECT state FROM node_commands")) == "done"
        with pytest.raises(sa.exc.DBAPIError):
            await conn.execute(
                sa.insert(commands).values(
                    {k: v for k, v in command("c-3", "failed").items() if k != "error"}
                )
            )


# --- canonical usernames and folded tags (0006) -------------------------------------------------

_USERS = sa.table(
    "users", sa.column("id"), sa.column("username"), sa.column("password_hash"), sa.column("role")
)


@pytest.mark.db_matrix
async def test_existing_users_get_their_canonical_name_and_tags_are_folded(
    fresh_db: MigrationDb,
) -> None:
    settings = fresh_db.settings
    await asyncio.to_thread(migrate.upgrade, settings, "0005")
    async with connect(settings) as conn:
        for name in ("Alice", "bob", "carol.x"):
            await conn.execute(
                sa.insert(_USERS).values(username=name, password_hash="h", role="viewer")
            )
        inserted = await conn.execute(sa.insert(Node).values(**node_row("n1", tags=["Web", "db"])))
        assert inserted.inserted_primary_key is not None
        node_id = inserted.inserted_primary_key[0]
        await conn.execute(
            sa.insert(NodeTag), [{"node_id": node_id, "tag": t} for t in ("Web", "db")]
        )
        await conn.commit()

    await upgrade(settings)

    async with connect(settings) as conn:
        keys = dict((await conn.execute(sa.select(User.username, User.username_key))).all())
        tags = set(await conn.scalars(sa.select(NodeTag.tag)))
    assert keys == {"Alice": "alice", "bob": "bob", "carol.x": "carol.x"}
    assert tags == {"web", "db"}

    await downgrade(settings, "0005")
    await upgrade(settings)
    await assert_at_head(settings)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])  # MariaDB never held such a pair
async def test_users_whose_names_clash_stop_the_upgrade_naming_them(
    backend: str, tmp_path: Path
) -> None:
    db = await fresh_database(backend, tmp_path)
    await asyncio.to_thread(migrate.upgrade, db.settings, "0005")
    async with connect(db.settings) as conn:
        for name in ("admin", "Admin", "solo"):
            await conn.execute(
                sa.insert(_USERS).values(username=name, password_hash="h", role="admin")
            )
        await conn.commit()

    with pytest.raises(RuntimeError, match=r"'admin', 'Admin'\. Rename all but one"):
        await upgrade(db.settings)
    assert await versions(db.settings) == ["0005"]
    columns = await run_sync(
        db.settings, lambda conn: [c["name"] for c in sa.inspect(conn).get_columns("users")]
    )
    assert "username_key" not in columns  # nothing half done: rename, then migrate again
