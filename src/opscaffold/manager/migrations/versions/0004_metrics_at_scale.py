"""metrics at fleet scale: day-partitioned raw rows, 5-minute rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:00:00

`node_metrics` becomes keyed by (timestamp, node_id) and partitioned by day (RANGE COLUMNS on
MySQL, declarative on PostgreSQL; one table on SQLite). The rows of the last 30 days are copied
over and their buckets queued for the rollup job, which turns them into rollups before the
retention job drops raw days past `metrics.raw_retention_days`.

Downtime: the copy runs while the migration holds its lock, so stop the Managers first; it
takes about as long as an INSERT ... SELECT of those rows (README: "Metrics"). Offline (SQL
script) upgrades copy the rows on MySQL only and queue no rollups: upgrade a database that
holds metrics online (`ops-manager migrate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from opscaffold.manager.migrations.helpers import ix

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPY_DAYS = 30  # the spec's default retention: older raw rows are not worth a rollup
MYSQL_PARTITIONS = "RANGE COLUMNS(`{column}`) (PARTITION pmax VALUES LESS THAN (MAXVALUE))"
METRICS = (
    ("cpu_usage", "percent"),
    ("memory_usage", "percent"),
    ("memory_used", "bigint"),
    ("disk_usage", "percent"),
    ("disk_used", "bigint"),
    ("network_rx", "bigint"),
    ("network_tx", "bigint"),
    ("load_avg_1", "percent"),
    ("load_avg_5", "percent"),
    ("load_avg_15", "percent"),
    ("process_count", "int"),
    ("tcp_connections", "int"),
)
NAMES = ", ".join(name for name, _ in METRICS)


def _type(kind: str) -> sa.types.TypeEngine[Any]:
    if kind == "percent":
        return sa.Numeric(precision=5, scale=2, asdecimal=False)
    return sa.BigInteger() if kind == "bigint" else sa.Integer()


def _ref() -> sa.types.TypeEngine[int]:
    return (
        sa.BigInteger()
        .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
        .with_variant(mysql.BIGINT(unsigned=True), "mysql")
    )


def _aggregates() -> list[sa.Column[Any]]:
    return [
        sa.Column(f"{name}_{agg}", _type(kind), nullable=True)
        for name, kind in METRICS
        for agg in ("avg", "max")
    ]


def _dialect() -> str:
    return op.get_context().dialect.name


def upgrade() -> None:
    op.drop_index(ix("idx_node_timestamp", "node_metrics"), table_name="node_metrics")
    op.drop_index(ix("idx_timestamp", "node_metrics"), table_name="node_metrics")
    op.rename_table("node_metrics", "node_metrics_legacy")
    if _dialect() == "postgresql":  # constraint (index) names are per schema there
        op.execute(
            "ALTER TABLE node_metrics_legacy RENAME CONSTRAINT pk_node_metrics "
            "TO pk_node_metrics_legacy"
        )
    _create_raw()
    _create_rollups()
    if not context.is_offline_mode():
        _move_legacy_rows(op.get_bind())
    elif _dialect() == "mysql":  # everything lands in pmax; the first maintenance splits it
        op.execute(
            f"INSERT INTO node_metrics (node_id, {NAMES}, timestamp) "
            f"SELECT node_id, {NAMES}, timestamp FROM node_metrics_legacy"
        )
    op.drop_table("node_metrics_legacy")


def _create_raw() -> None:
    op.create_table(
        "node_metrics",
        sa.Column("node_id", _ref(), nullable=False),
        *[sa.Column(name, _type(kind), nullable=True) for name, kind in METRICS],
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("timestamp", "node_id", name=op.f("pk_node_metrics")),
        comment="node metrics",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
        mysql_partition_by=MYSQL_PARTITIONS.format(column="timestamp"),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index(
        ix("idx_node_timestamp", "node_metrics"), "node_metrics", ["node_id", "timestamp"]
    )


def _create_rollups() -> None:
    op.create_table(
        "node_metrics_5m",
        sa.Column("node_id", _ref(), nullable=False),
        sa.Column("bucket", sa.DateTime(), nullable=False, comment="bucket start (UTC)"),
        sa.Column("samples", sa.Integer(), nullable=False, comment="raw reports in the bucket"),
        *_aggregates(),
        sa.PrimaryKeyConstraint("node_id", "bucket", name=op.f("pk_node_metrics_5m")),
        comment="5-minute metric rollups per node",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
        mysql_partition_by=MYSQL_PARTITIONS.format(column="bucket"),
        postgresql_partition_by="RANGE (bucket)",
    )
    op.create_index(ix("idx_bucket", "node_metrics_5m"), "node_metrics_5m", ["bucket"])
    op.create_table(
        "fleet_metrics_5m",
        sa.Column(
            "group_id",
            _ref(),
            nullable=False,
            comment="0: the whole fleet; else a group subtree",
        ),
        sa.Column("bucket", sa.DateTime(), nullable=False, comment="bucket start (UTC)"),
        sa.Column("nodes", sa.Integer(), nullable=False, comment="nodes that reported"),
        sa.Column("samples", sa.Integer(), nullable=False, comment="raw reports in the bucket"),
        *_aggregates(),
        sa.PrimaryKeyConstraint("group_id", "bucket", name=op.f("pk_fleet_metrics_5m")),
        comment="5-minute metric rollups of the fleet and of each group",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_bucket", "fleet_metrics_5m"), "fleet_metrics_5m", ["bucket"])
    op.create_table(
        "metric_rollup_pending",
        sa.Column("bucket", sa.DateTime(), nullable=False, comment="bucket start (UTC)"),
        sa.Column(
            "version",
            sa.BigInteger(),
            nullable=False,
            comment="bumped by every ingest batch with rows in the bucket",
        ),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_metric_rollup_pending")),
        comment="buckets with raw rows not yet rolled up",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def _add_day_partitions(conn: sa.Connection, table: str, first: date, last: date) -> None:
    """Day partitions [first, last] of a table this migration has just created (MySQL: only
    `pmax` exists, PostgreSQL: none; SQLite has no partitions). Written out here, not taken
    from the Manager's partition code, so that this migration never changes under it."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def bound(day: date) -> str:
        return f"'{day.isoformat()} 00:00:00'"

    if conn.dialect.name in ("mysql", "mariadb"):
        parts = [f"PARTITION p{d:%Y%m%d} VALUES LESS THAN ({bound(d + timedelta(days=1))})" for d in days]
        parts.append("PARTITION pmax VALUES LESS THAN (MAXVALUE)")
        conn.execute(sa.text(f"ALTER TABLE {table} REORGANIZE PARTITION pmax INTO ({', '.join(parts)})"))
    elif conn.dialect.name == "postgresql":
        for day in days:
            name = f"{table}_p{day:%Y%m%d}"
            conn.execute(
                sa.text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            )
            conn.execute(
                sa.text(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} "
                    f"FOR VALUES FROM ({bound(day)}) TO ({bound(day + timedelta(days=1))})"
                )
            )


def _move_legacy_rows(conn: sa.Connection) -> None:
    """Copy the last COPY_DAYS of raw rows into day partitions and queue their buckets."""
    now = datetime.utcnow()  # noqa: DTZ003 - naive UTC, as every stored time
    since = datetime.combine(now.date() - timedelta(days=COPY_DAYS), datetime.min.time())
    until = datetime.combine(now.date() + timedelta(days=2), datetime.min.time())
    window = {"since": since, "until": until}
    legacy = sa.table("node_metrics_legacy", sa.column("timestamp", sa.DateTime))
    at = legacy.c.timestamp
    oldest = conn.scalar(sa.select(sa.func.min(at)).where(at >= since, at < until))
    if oldest is None:
        return
    first = min(oldest.date(), now.date())
    for table in ("node_metrics", "node_metrics_5m"):
        _add_day_partitions(conn, table, first, now.date() + timedelta(days=2))
    conn.execute(
        sa.text(
            f"INSERT INTO node_metrics (node_id, {NAMES}, timestamp) "
            f"SELECT node_id, {NAMES}, timestamp FROM node_metrics_legacy "
            "WHERE timestamp >= :since AND timestamp < :until"
        ),
        window,
    )
    buckets = conn.scalars(
        sa.text(f"SELECT DISTINCT {_bucket_number(conn.dialect.name)} FROM node_metrics")
    ).all()
    pending = sa.table(
        "metric_rollup_pending", sa.column("bucket", sa.DateTime), sa.column("version")
    )
    epoch = datetime(1970, 1, 1)
    rows = [{"bucket": epoch + timedelta(seconds=int(b) * 300), "version": 1} for b in buckets]
    for i in range(0, len(rows), 1000):
        conn.execute(sa.insert(pending), rows[i : i + 1000])


def _bucket_number(dialect: str) -> str:
    """The 5-minute bucket of a row as whole buckets since 1970 (no time zone applied)."""
    if dialect in ("mysql", "mariadb"):
        return "TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', timestamp) DIV 300"
    if dialect == "postgresql":
        return "CAST(floor(extract(epoch FROM timestamp) / 300) AS BIGINT)"
    return "CAST(strftime('%s', timestamp) AS INTEGER) / 300"


def downgrade() -> None:
    op.drop_table("metric_rollup_pending")
    op.drop_index(ix("idx_bucket", "fleet_metrics_5m"), table_name="fleet_metrics_5m")
    op.drop_table("fleet_metrics_5m")
    op.drop_index(ix("idx_bucket", "node_metrics_5m"), table_name="node_metrics_5m")
    op.drop_table("node_metrics_5m")
    op.drop_index(ix("idx_node_timestamp", "node_metrics"), table_name="node_metrics")
    op.rename_table("node_metrics", "node_metrics_partitioned")
    if _dialect() == "postgresql":
        op.execute(
            "ALTER TABLE node_metrics_partitioned RENAME CONSTRAINT pk_node_metrics "
            "TO pk_node_metrics_partitioned"
        )
    op.create_table(
        "node_metrics",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("node_id", _ref(), nullable=False),
        *[sa.Column(name, _type(kind), nullable=True) for name, kind in METRICS],
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_metrics")),
        comment="node metrics",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(
        ix("idx_node_timestamp", "node_metrics"),
        "node_metrics",
        ["node_id", "timestamp"],
        unique=True,
    )
    op.create_index(ix("idx_timestamp", "node_metrics"), "node_metrics", ["timestamp"])
    op.execute(
        f"INSERT INTO node_metrics (node_id, {NAMES}, timestamp) "
        f"SELECT node_id, {NAMES}, timestamp FROM node_metrics_partitioned"
    )
    op.drop_table("node_metrics_partitioned")
