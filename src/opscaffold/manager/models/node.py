from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import (
    Base,
    BigId,
    BigRef,
    Json,
    Percent,
    enum,
    now_default,
)

TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
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
    __tablename__ = "node_metrics"
    __table_args__ = (
        sa.Index("idx_node_timestamp", "node_id", "timestamp"),
        sa.Index("idx_timestamp", "timestamp"),
        {"comment": "node metrics", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(BigRef)
    cpu_usage: Mapped[float | None] = mapped_column(Percent)
    memory_usage: Mapped[float | None] = mapped_column(Percent)
    memory_used: Mapped[int | None] = mapped_column(sa.BigInteger)
    disk_usage: Mapped[float | None] = mapped_column(Percent)
    disk_used: Mapped[int | None] = mapped_column(sa.BigInteger)
    network_rx: Mapped[int | None] = mapped_column(sa.BigInteger)
    network_tx: Mapped[int | None] = mapped_column(sa.BigInteger)
    load_avg_1: Mapped[float | None] = mapped_column(Percent)
    load_avg_5: Mapped[float | None] = mapped_column(Percent)
    load_avg_15: Mapped[float | None] = mapped_column(Percent)
    process_count: Mapped[int | None] = mapped_column(sa.Integer)
    tcp_connections: Mapped[int | None] = mapped_column(sa.Integer)
    timestamp: Mapped[datetime] = mapped_column(sa.DateTime)
