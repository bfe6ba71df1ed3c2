from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import (
    Base,
    BigId,
    BigRef,
    BinaryKey,
    Json,
    Percent,
    enum,
    exact_string,
    now_default,
)
from opscaffold.manager.models.metric_fields import metric_columns

TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
# The fixed layout a migration creates: everything goes to `pmax` until day partitions are
# split off it at run time, ahead of the days they hold.
MYSQL_DAILY_PARTITIONS = "RANGE COLUMNS(`{column}`) (PARTITION pmax VALUES LESS THAN (MAXVALUE))"
NODE_STATUSES = ("online", "offline", "unknown")
AGENT_STATUSES = ("running", "stopped", "error", "unknown")


class NodeGroup(Base):
    __tablename__ = "node_groups"
    __table_args__ = (
        sa.Index("idx_parent_id", "parent_id"),
        {"comment": "node groups", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    parent_id: Mapped[int | None] = mapped_column(BigRef)
    sort_order: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        sa.UniqueConstraint("uuid", name="uk_uuid"),
        sa.Index("idx_group_id", "group_id"),
        sa.Index("idx_status", "status"),
        sa.Index("idx_ip", "ip"),
        # Ours: the offline check finds online nodes past their deadline by this index alone.
        sa.Index("idx_status_heartbeat", "status", "last_heartbeat"),
        {"comment": "nodes", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(sa.String(36))
    hostname: Mapped[str] = mapped_column(sa.String(128))
    ip: Mapped[str] = mapped_column(sa.String(45))
    port: Mapped[int] = mapped_column(sa.Integer, server_default="9100", default=9100)
    group_id: Mapped[int | None] = mapped_column(BigRef)
    os: Mapped[str | None] = mapped_column(sa.String(32))
    arch: Mapped[str | None] = mapped_column(sa.String(16))
    kernel_version: Mapped[str | None] = mapped_column(sa.String(64))
    daemon_version: Mapped[str | None] = mapped_column(sa.String(32))
    cpu_cores: Mapped[int | None] = mapped_column(sa.Integer)
    memory_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    disk_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(
        enum("node_status", *NODE_STATUSES), server_default="unknown", default="unknown"
    )
    last_heartbeat: Mapped[datetime | None] = mapped_column(sa.DateTime)
    tags: Mapped[list[str] | None] = mapped_column(Json)
    labels: Mapped[dict[str, str] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )
    # Ours: the address the Manager saw the daemon connect from (`ip` is what it reports).
    peer_ip: Mapped[str | None] = mapped_column(sa.String(45))
    # Ours: SHA-256 of the key the daemon enrolled with; only its holder may enroll the node
    # again before it is first heard from.
    enrollment_key_hash: Mapped[str | None] = mapped_column(sa.String(64))


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        sa.UniqueConstraint("node_id", name="uk_node_id"),
        {"comment": "agents", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(
        BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE", name="fk_agents_node")
    )
    version: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(
        enum("agent_status", *AGENT_STATUSES), server_default="unknown", default="unknown"
    )
    pid: Mapped[int | None] = mapped_column(sa.Integer)
    cpu_usage: Mapped[float | None] = mapped_column(Percent)
    memory_usage: Mapped[int | None] = mapped_column(sa.BigInteger)
    start_time: Mapped[datetime | None] = mapped_column(sa.DateTime)
    restart_count: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )


class NodeMetric(Base):
    """Raw reports, kept for `metrics.raw_retention_days`, in one partition per day.

    The natural key, time first, is the primary key: the partitioning column is then in every
    unique key (MySQL requires it), a report sent twice is stored once, new rows go to the end
    of the (InnoDB clustered) key instead of one page per node, and a rollup pass reads one
    time slice in order. A node's history uses idx_node_timestamp. No foreign keys:
    partitioned InnoDB tables cannot have any; the flusher writes only for existing nodes and
    deleting a node deletes its rows. The migration creates one catch-all partition (MySQL) or
    none (PostgreSQL); day partitions are managed at run time (`metric.partitions`).
    The metric columns come from the catalogue (`metric_fields`).
    """

    __table__ = sa.Table(
        "node_metrics",
        Base.metadata,
        sa.Column("node_id", BigRef, nullable=False),
        *metric_columns(),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("timestamp", "node_id"),
        sa.Index("idx_node_timestamp", "node_id", "timestamp"),
        comment="node metrics",
        mysql_partition_by=MYSQL_DAILY_PARTITIONS.format(column="timestamp"),
        postgresql_partition_by="RANGE (timestamp)",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    node_id: Mapped[int]
    timestamp: Mapped[datetime]


class NodeMetricLatest(Base):
    """The newest report of each node: lists, the dashboard and the alert evaluator read it."""

    __table__ = sa.Table(
        "node_metrics_latest",
        Base.metadata,
        sa.Column(
            "node_id", BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
        ),
        *metric_columns(),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        comment="latest metrics per node",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    node_id: Mapped[int]
    timestamp: Mapped[datetime]


class NodeTag(Base):
    """Side table of nodes.tags, so filtering by tag uses an index (JSON cannot)."""

    __tablename__ = "node_tags"
    __table_args__ = (sa.Index("idx_node_tags_tag", "tag", "node_id"), TABLE_OPTS)

    node_id: Mapped[int] = mapped_column(
        BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    )
    # Case-folded (nodes.tags keeps the spelling given): tag filters ignore case everywhere.
    tag: Mapped[str] = mapped_column(BinaryKey, primary_key=True)


class NodeLabel(Base):
    """Side table of nodes.labels, for label selectors (k=v) served by an index."""

    __tablename__ = "node_labels"
    __table_args__ = (sa.Index("idx_node_labels_key_value", "key", "value", "node_id"), TABLE_OPTS)

    node_id: Mapped[int] = mapped_column(
        BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    )
    # Exact, as label selectors are elsewhere: `env=Prod` is not `env=prod` on any database.
    key: Mapped[str] = mapped_column(exact_string(63), primary_key=True)
    value: Mapped[str] = mapped_column(exact_string(191))


class NodeEvent(Base):
    """A node's status transitions (online, offline, registered), with their time."""

    __tablename__ = "node_events"
    __table_args__ = (sa.Index("idx_node_events_node_id_at", "node_id", "at"), TABLE_OPTS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(sa.String(32))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str | None] = mapped_column(sa.String(16))
    at: Mapped[datetime] = mapped_column(sa.DateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)


class NodeConfig(Base):
    """Configuration set for a group (inherited down the tree) or for one node."""

    __tablename__ = "node_configs"
    __table_args__ = (TABLE_OPTS,)

    scope: Mapped[str] = mapped_column(enum("node_config_scope", "group", "node"), primary_key=True)
    scope_id: Mapped[int] = mapped_column(BigRef, primary_key=True)
    config: Mapped[dict[str, str]] = mapped_column(Json)
    updated_by: Mapped[int | None] = mapped_column(BigRef)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, onupdate=utcnow)


class NodeCredential(Base):
    """A node's token (token identity mode), stored as SHA-256; gone with the node."""

    __tablename__ = "node_credentials"
    __table_args__ = (sa.UniqueConstraint("token_hash", name="uk_node_token_hash"), TABLE_OPTS)

    node_id: Mapped[int] = mapped_column(
        BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class EnrollmentToken(Base):
    """A secret a new daemon presents at Register to receive its own node token."""

    __tablename__ = "enrollment_tokens"
    __table_args__ = (
        sa.UniqueConstraint("token_hash", name="uk_enrollment_token_hash"),
        TABLE_OPTS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    token_prefix: Mapped[str] = mapped_column(sa.String(12))
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    max_uses: Mapped[int | None] = mapped_column(sa.Integer)
    uses: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    created_by: Mapped[int | None] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


# The transitions between them are in command/states.py.
COMMAND_STATES = ("pending", "sent", "done", "expired", "failed")


class NodeCommand(Base):
    """The command outbox: one row per command for one node, delivered at least once; `error`
    holds the daemon's reason when it could not carry the command out."""

    __tablename__ = "node_commands"
    __table_args__ = (
        sa.Index("idx_node_commands_node_id_state", "node_id", "state"),
        sa.Index("idx_node_commands_state_expires_at", "state", "expires_at"),
        TABLE_OPTS,
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    node_id: Mapped[int] = mapped_column(BigRef, sa.ForeignKey("nodes.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    state: Mapped[str] = mapped_column(
        enum("node_command_state", *COMMAND_STATES), server_default="pending", default="pending"
    )
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    done_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    delivered_via: Mapped[str | None] = mapped_column(sa.String(16))
    created_by: Mapped[int | None] = mapped_column(BigRef)
    error: Mapped[str | None] = mapped_column(sa.Text)
