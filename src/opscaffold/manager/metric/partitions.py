"""Day partitions of the metric tables: made ahead of time, dropped whole when expired.

Retention then costs the same at 100,000 nodes as at 10: dropping a day's partition is a
file removal, where a DELETE of 144 M rows runs for hours and never gives the space back.

- MySQL/MariaDB: RANGE COLUMNS partitions `pYYYYMMDD` (the day before the bound), split off
  the catch-all `pmax` the migration creates; `pmax` stays empty, so a split copies nothing.
- PostgreSQL: a table `<table>_pYYYYMMDD` created alone, then ATTACHed (which does not block
  writers, as CREATE ... PARTITION OF would); DETACH ... CONCURRENTLY before DROP. No DEFAULT
  partition: it would forbid the concurrent detach.
- SQLite: one table; expired rows are deleted in small chunks, one transaction each.

Everything here is synchronous on a `Connection` in autocommit mode, so that both the
migration (inside Alembic) and the job (through `AsyncConnection.run_sync`) use it. Lock
waits are bounded, so a long query delays maintenance, never ingest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opscaffold.manager.config import MetricsSettings
from opscaffold.manager.logging import get_logger
from opscaffold.manager.models.metric import metric_rollup_pending

log = get_logger("opscaffold.metric")

DAY = timedelta(days=1)
# Raw rows are refused at ingest once older than their retention; keeping a day's partition
# this much longer means a report validated just before the cut still finds its partition.
DROP_MARGIN = timedelta(hours=1)
LOCK_WAIT_SECONDS = 2
DELETE_CHUNK = 5000
_DAY_NAME = re.compile(r"p(\d{8})$")


@dataclass(frozen=True, slots=True)
class DailyTable:
    name: str
    column: str


RAW = DailyTable("node_metrics", "timestamp")
ROLLUPS = DailyTable("node_metrics_5m", "bucket")
PARTITIONED = (RAW, ROLLUPS)


FLEET_ROLLUPS = DailyTable("fleet_metrics_5m", "bucket")  # small: hundreds of rows a day


@dataclass
class Maintenance:
    created: dict[str, list[date]] = field(default_factory=dict)
    dropped: dict[str, list[date]] = field(default_factory=dict)
    # Rows to delete in chunks (`delete_chunk`): before which day, per table.
    delete_before: dict[DailyTable, date] = field(default_factory=dict)


def _dialect(conn: Connection) -> str:
    name = conn.dialect.name
    return "mysql" if name == "mariadb" else name


def day_of(at: datetime) -> date:
    return at.date()


def _bound(day: date) -> str:
    return f"'{day.isoformat()} 00:00:00'"


def is_runtime_partition(table_name: str) -> bool:
    """PostgreSQL partitions made at run time: schema comparisons leave them out."""
    return any(
        table_name.startswith(f"{t.name}_p") and _DAY_NAME.search(table_name) for t in PARTITIONED
    )


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's schema comparison: day partitions are made and dropped at run time, so
    they are not part of the schema's history."""
    return not (type_ == "table" and name is not None and is_runtime_partition(name))


def maintain(conn: Connection, settings: MetricsSettings, now: datetime) -> Maintenance:
    """Make the partitions of the coming days and drop expired ones; say what is left to
    delete row by row (SQLite, and the small fleet table)."""
    done = Maintenance()
    first = day_of(now - timedelta(days=settings.raw_retention_days) - DROP_MARGIN)
    last = day_of(now) + timedelta(days=settings.partition_days_ahead)
    for table in PARTITIONED:
        done.created[table.name] = ensure_days(conn, table, first, last)
    raw_cutoff = first
    oldest_pending = conn.scalar(sa.select(sa.func.min(metric_rollup_pending.c.bucket)))
    if oldest_pending is not None:  # never drop raw rows that still wait for their rollup
        raw_cutoff = min(raw_cutoff, day_of(oldest_pending))
    rollup_cutoff = day_of(now - timedelta(days=settings.retention_days))
    for table, cutoff in ((RAW, raw_cutoff), (ROLLUPS, rollup_cutoff)):
        if _dialect(conn) == "sqlite":
            done.delete_before[table] = cutoff
        else:
            done.dropped[table.name] = drop_days_before(conn, table, cutoff)
    done.delete_before[FLEET_ROLLUPS] = rollup_cutoff
    return done


# -- listing -------------------------------------------------------------------------------
def existing_days(conn: Connection, table: DailyTable) -> dict[date, str]:
    """The table's day partitions: {day: partition name}."""
    dialect = _dialect(conn)
    if dialect == "mysql":
        names = conn.scalars(
            sa.text(
                "SELECT PARTITION_NAME FROM information_schema.PARTITIONS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": table.name},
        ).all()
    elif dialect == "postgresql":
        names = conn.scalars(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:t AS regclass)"
            ),
            {"t": table.name},
        ).all()
    else:
        return {}
    days: dict[date, str] = {}
    for name in names:
        found = _DAY_NAME.search(name or "")
        if found:
            days[datetime.strptime(found.group(1), "%Y%m%d").date()] = name
    return days


def _days(first: date, last: date) -> list[date]:
    return [first + DAY * i for i in range((last - first).days + 1)]


# -- creating ------------------------------------------------------------------------------
def ensure_days(conn: Connection, table: DailyTable, first: date, last: date) -> list[date]:
    """Partitions for every day in [first, last] that has none; returns the days made."""
    dialect = _dialect(conn)
    if dialect not in ("mysql", "postgresql"):
        return []
    existing = existing_days(conn, table)
    if dialect == "mysql":
        # Only above the highest bound: lower days already fall into the lowest partition.
        top = max(existing, default=None)
        wanted = [d for d in _days(first, last) if top is None or d > top]
        if wanted:
            _mysql_split_pmax(conn, table, wanted)
        return wanted
    wanted = [d for d in _days(first, last) if d not in existing]
    for day in wanted:
        _pg_attach(conn, table, day)
    return wanted


def _mysql_split_pmax(conn: Connection, table: DailyTable, days: list[date]) -> None:
    parts = [f"PARTITION p{d:%Y%m%d} VALUES LESS THAN ({_bound(d + DAY)})" for d in days] + [
        "PARTITION pmax VALUES LESS THAN (MAXVALUE)"
    ]
    conn.execute(sa.text(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS}"))
    conn.execute(
        sa.text(f"ALTER TABLE {table.name} REORGANIZE PARTITION pmax INTO ({', '.join(parts)})")
    )


def _pg_attach(conn: Connection, table: DailyTable, day: date) -> None:
    name = f"{table.name}_p{day:%Y%m%d}"
    conn.execute(sa.text(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
    conn.execute(
        sa.text(
            f"CREATE TABLE IF NOT EXISTS {name} "
            f"(LIKE {table.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
    )
    conn.execute(
        sa.text(
            f"ALTER TABLE {table.name} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ({_bound(day)}) TO ({_bound(day + DAY)})"
        )
    )
    conn.execute(sa.text("SET lock_timeout = 0"))


# -- dropping ------------------------------------------------------------------------------
def drop_days_before(conn: Connection, table: DailyTable, cutoff: date) -> list[date]:
    """Drop the partitions of days before `cutoff` (every row in them is older)."""
    expired = sorted(d for d in existing_days(conn, table) if d < cutoff)
    if not expired:
        return []
    if _dialect(conn) == "mysql":
        conn.execute(sa.text(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS}"))
        names = ", ".join(f"p{d:%Y%m%d}" for d in expired)
        conn.execute(sa.text(f"ALTER TABLE {table.name} DROP PARTITION {names}"))
        return expired
    for day in expired:
        _pg_detach_and_drop(conn, table, f"{table.name}_p{day:%Y%m%d}")
    return expired


def _pg_detach_and_drop(conn: Connection, table: DailyTable, name: str) -> None:
    pending = conn.scalar(
        sa.text(
            "SELECT i.inhdetachpending FROM pg_inherits i "
            "WHERE i.inhrelid = CAST(:p AS regclass) AND i.inhparent = CAST(:t AS regclass)"
        ),
        {"p": name, "t": table.name},
    )
    conn.execute(sa.text(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
    if pending:  # an earlier run was interrupted between the two phases of the detach
        conn.execute(sa.text(f"ALTER TABLE {table.name} DETACH PARTITION {name} FINALIZE"))
    else:
        conn.execute(sa.text(f"ALTER TABLE {table.name} DETACH PARTITION {name} CONCURRENTLY"))
    conn.execute(sa.text(f"DROP TABLE {name}"))
    conn.execute(sa.text("SET lock_timeout = 0"))


def delete_chunk(conn: Connection, table: DailyTable, cutoff: date) -> int:
    """Delete up to DELETE_CHUNK rows from before `cutoff`; the caller repeats while that many
    went, each chunk in its own transaction so that writers get the lock in between."""
    rows = sa.table(table.name, sa.column(table.column, sa.DateTime))
    expired = rows.c[table.column] < datetime.combine(cutoff, datetime.min.time())
    if _dialect(conn) == "mysql":
        stmt = sa.delete(rows).where(expired).with_dialect_options(mysql_limit=DELETE_CHUNK)
    else:  # by physical row id: neither SQLite nor PostgreSQL has DELETE ... LIMIT
        row_id: sa.ColumnClause[Any] = sa.literal_column(
            "rowid" if _dialect(conn) == "sqlite" else "ctid"
        )
        chunk = sa.select(row_id).select_from(rows).where(expired).limit(DELETE_CHUNK)
        stmt = sa.delete(rows).where(row_id.in_(chunk))
    return int(conn.execute(stmt).rowcount)
