"""Metric rollups: 5-minute aggregates per node and per group, and the buckets awaiting one.

Core tables (no ORM classes): they are only read and written in bulk by set-based SQL.
Each numeric report field `f` has `f_avg` and `f_max`, typed as the raw column.
"""

from __future__ import annotations

import sqlalchemy as sa

from opscaffold.manager.models.base import Base, BigRef
from opscaffold.manager.models.metric_fields import metric_columns
from opscaffold.manager.models.node import MYSQL_DAILY_PARTITIONS

ROLLUP_SECONDS = 300  # one bucket: [start, start + 5 min)
FLEET = 0  # the group_id of the whole fleet's rows


node_metrics_5m = sa.Table(
    "node_metrics_5m",
    Base.metadata,
    sa.Column("node_id", BigRef, primary_key=True),
    sa.Column("bucket", sa.DateTime, primary_key=True, comment="bucket start (UTC)"),
    sa.Column("samples", sa.Integer, nullable=False, comment="raw reports in the bucket"),
    *metric_columns(("_avg", "_max")),
    sa.Index("idx_bucket", "bucket"),
    comment="5-minute metric rollups per node",
    mysql_partition_by=MYSQL_DAILY_PARTITIONS.format(column="bucket"),
    postgresql_partition_by="RANGE (bucket)",
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

fleet_metrics_5m = sa.Table(
    "fleet_metrics_5m",
    Base.metadata,
    sa.Column(
        "group_id", BigRef, primary_key=True, comment="0: the whole fleet; else a group subtree"
    ),
    sa.Column("bucket", sa.DateTime, primary_key=True, comment="bucket start (UTC)"),
    sa.Column("nodes", sa.Integer, nullable=False, comment="nodes that reported"),
    sa.Column("samples", sa.Integer, nullable=False, comment="raw reports in the bucket"),
    *metric_columns(("_avg", "_max")),
    sa.Index("idx_bucket", "bucket"),
    comment="5-minute metric rollups of the fleet and of each group",
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

metric_rollup_pending = sa.Table(
    "metric_rollup_pending",
    Base.metadata,
    sa.Column("bucket", sa.DateTime, primary_key=True, comment="bucket start (UTC)"),
    sa.Column(
        "version",
        sa.BigInteger,
        nullable=False,
        comment="bumped by every ingest batch with rows in the bucket",
    ),
    comment="buckets with raw rows not yet rolled up",
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)
