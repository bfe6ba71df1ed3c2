from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import Base, BigId, BigRef, Json, enum, now_default

TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "ne")
SEVERITIES = ("critical", "warning", "info")
Threshold = sa.Numeric(10, 2, asdecimal=False)


class AlertRule(Base):
    __tablename__ = "alert_rules"
    __table_args__ = (
        sa.Index("idx_metric", "metric"),
        sa.Index("idx_status", "status"),
        {"comment": "alert rules", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    metric: Mapped[str] = mapped_column(sa.String(64))
    operator: Mapped[str] = mapped_column(enum("alert_operator", *OPERATORS))
    threshold: Mapped[float] = mapped_column(Threshold)
    duration: Mapped[int] = mapped_column(sa.Integer, server_default="60", default=60)
    severity: Mapped[str] = mapped_column(
        enum("alert_severity", *SEVERITIES), server_default="warning", default="warning"
    )
    target_type: Mapped[str] = mapped_column(
        enum("alert_target_type", "all", "group", "node"), server_default="all", default="all"
    )
    target_value: Mapped[list[str] | None] = mapped_column(Json)
    notification: Mapped[dict[str, Any] | None] = mapped_column(Json)
    status: Mapped[str] = mapped_column(
        enum("alert_rule_status", "enabled", "disabled"),
        server_default="enabled",
        default="enabled",
    )
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("idx_rule_id", "rule_id"),
        sa.Index("idx_node_id", "node_id"),
        sa.Index("idx_status", "status"),
        sa.Index("idx_fired_at", "fired_at"),
        {"comment": "alerts", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(BigRef)
    node_id: Mapped[int] = mapped_column(BigRef)
    metric: Mapped[str] = mapped_column(sa.String(64))
    current_value: Mapped[float] = mapped_column(Threshold)
    threshold: Mapped[float] = mapped_column(Threshold)
    severity: Mapped[str] = mapped_column(enum("alert_severity", *SEVERITIES))
    status: Mapped[str] = mapped_column(
        enum("alert_status", "firing", "resolved"), server_default="firing", default="firing"
    )
    fired_at: Mapped[datetime] = mapped_column(sa.DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(BigRef)
    acknowledged_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
