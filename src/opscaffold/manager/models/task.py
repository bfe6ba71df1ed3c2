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
    Json,
    MediumText,
    TinyInt,
    enum,
    now_default,
)

TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
TASK_TYPES = ("script", "file", "service", "custom")
TARGET_TYPES = ("node", "group", "tag", "all")
EXECUTION_STATUSES = ("pending", "running", "success", "failed", "timeout", "cancelled")
TRIGGERS = ("manual", "schedule", "api")
MISFIRE_POLICIES = ("skip", "run_once")  # what a scheduled fire missed while no Manager ran does


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("idx_type", "type"),
        sa.Index("idx_status", "status"),
        sa.Index("idx_tasks_status_next_run_at", "status", "next_run_at"),
        {"comment": "tasks", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    type: Mapped[str] = mapped_column(enum("task_type", *TASK_TYPES))
    content: Mapped[dict[str, Any]] = mapped_column(Json)
    cron_expr: Mapped[str | None] = mapped_column(sa.String(64))
    timeout: Mapped[int] = mapped_column(sa.Integer, server_default="300", default=300)
    retry_count: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    retry_interval: Mapped[int] = mapped_column(sa.Integer, server_default="60", default=60)
    target_type: Mapped[str] = mapped_column(
        enum("task_target_type", *TARGET_TYPES), server_default="node", default="node"
    )
    target_value: Mapped[list[str] | None] = mapped_column(Json)
    status: Mapped[str] = mapped_column(
        enum("task_status", "enabled", "disabled"), server_default="enabled", default="enabled"
    )
    description: Mapped[str | None] = mapped_column(sa.String(255))
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )
    # Ours: the cron schedule's next due time (null without a schedule or while disabled),
    # found through its index by the scheduler, and what a fire missed while no Manager ran does.
    next_run_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    misfire: Mapped[str] = mapped_column(
        enum("task_misfire", *MISFIRE_POLICIES), server_default="skip", default="skip"
    )


class TaskExecution(Base):
    __tablename__ = "task_executions"
    __table_args__ = (
        sa.Index("idx_task_id", "task_id"),
        sa.Index("idx_execution_id", "execution_id"),
        sa.Index("idx_node_id", "node_id"),
        sa.Index("idx_status", "status"),
        sa.Index("idx_created_at", "created_at"),
        sa.Index("uk_task_executions_execution_node", "execution_id", "node_id", unique=True),
        sa.Index("idx_task_executions_status_deadline", "status", "deadline_at"),
        {"comment": "task executions", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigRef)
    execution_id: Mapped[str] = mapped_column(sa.String(36))
    node_id: Mapped[int] = mapped_column(BigRef)
    status: Mapped[str] = mapped_column(
        enum("execution_status", *EXECUTION_STATUSES), server_default="pending", default="pending"
    )
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    output: Mapped[str | None] = mapped_column(MediumText)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    triggered_by: Mapped[str] = mapped_column(
        enum("execution_trigger", *TRIGGERS), server_default="manual", default="manual"
    )
    created_by: Mapped[int | None] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    # Ours: the command that carried the envelope, when no result can be expected any more,
    # whether the Agent cut the output short, and when the node last reported.
    command_id: Mapped[str | None] = mapped_column(sa.String(36))
    deadline_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    reported_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    output_truncated: Mapped[int] = mapped_column(TinyInt, server_default="0", default=0)


class TaskOutputChunk(Base):
    """Ours: a running execution's output as its node sends it, a part per row in order
    (`start_offset`/`end_offset`: bytes of its UTF-8 text). Kept while the execution runs;
    the final result then holds it all in `task_executions.output`."""

    __tablename__ = "task_output_chunks"
    __table_args__ = (
        sa.UniqueConstraint(
            "execution_id", "node_id", "start_offset", name="uk_task_output_chunks_part"
        ),
        {"comment": "task output while the execution runs", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(sa.String(36))
    node_id: Mapped[int] = mapped_column(BigRef)
    start_offset: Mapped[int] = mapped_column(sa.BigInteger)
    end_offset: Mapped[int] = mapped_column(sa.BigInteger)
    data: Mapped[str] = mapped_column(MediumText)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
