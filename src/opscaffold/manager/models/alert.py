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
TARGET_TYPES = ("all", "group", "tag", "node")
SILENCE_TARGETS = ("rule", "node", "group", "tag")
# Wider than the spec's DECIMAL(10,2): byte counts (memory_used, disk_used) pass 10^8.
Threshold = sa.Numeric(20, 2, asdecimal=False)


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
        enum("alert_target_type", *TARGET_TYPES), server_default="all", default="all"
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
    # Ours: a firing alert stays firing this long after its condition clears (anti-flap).
    keep_firing_for: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("idx_rule_id", "rule_id"),
        sa.Index("idx_node_id", "node_id"),
        sa.Index("idx_status", "status"),
        sa.Index("idx_fired_at", "fired_at"),
        sa.UniqueConstraint("open_key", name="uk_open_key"),
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
    # Ours: "<rule_id>:<node_id>" while firing, NULL once resolved. Unique, so one condition
    # has at most one open alert whichever replica evaluates it (NULLs never collide).
    open_key: Mapped[str | None] = mapped_column(sa.String(48))


class AlertCondition(Base):
    """A (rule, node) pair whose condition holds or held lately: pending until it has held for
    the rule's duration, then firing (its alert is the one whose open_key is `key`). Kept in
    the database so that any replica, or a restarted one, evaluates on from it."""

    __tablename__ = "alert_conditions"
    __table_args__ = (
        # `key` is the open alert's open_key. Keyed by (rule, node), a rule's conditions are
        # one range: the evaluator reads them a rule at a time.
        sa.UniqueConstraint("key", name="uk_alert_conditions_key"),
        TABLE_OPTS,
    )

    key: Mapped[str] = mapped_column(sa.String(48))  # "<rule_id>:<node_id>"
    rule_id: Mapped[int] = mapped_column(BigRef, primary_key=True)
    node_id: Mapped[int] = mapped_column(BigRef, primary_key=True)
    since: Mapped[datetime] = mapped_column(sa.DateTime)  # first evaluated true
    fired_at: Mapped[datetime | None] = mapped_column(sa.DateTime)  # None: pending
    cleared_at: Mapped[datetime | None] = mapped_column(sa.DateTime)  # firing, evaluated false


class AlertSilence(Base):
    """Mutes the alerts of a rule, a node, a group (with its sub-groups) or a tag until
    `ends_at`: they are still recorded, shown as silenced, and notify nobody."""

    __tablename__ = "alert_silences"
    __table_args__ = (
        sa.Index("idx_alert_silences_ends_at", "ends_at"),
        TABLE_OPTS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_type: Mapped[str] = mapped_column(enum("alert_silence_target", *SILENCE_TARGETS))
    target_value: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(255))
    starts_at: Mapped[datetime] = mapped_column(sa.DateTime)
    ends_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, onupdate=utcnow)


class AlertEvaluator(Base):
    """One row: when alerts were last evaluated. Each evaluation locks it first, so two
    replicas never evaluate at once, and one holding an older clock than the last evaluation
    gives way instead of undoing it."""

    __tablename__ = "alert_evaluator"
    __table_args__ = (TABLE_OPTS,)

    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    evaluated_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
