"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:03:23.981017
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

from opscaffold.manager.migrations.helpers import enum, ix, updated_at_default

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column(
            "operator",
            enum("alert_operator", "gt", "gte", "lt", "lte", "eq", "ne"),
            nullable=False,
        ),
        sa.Column("threshold", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=False),
        sa.Column("duration", sa.Integer(), server_default="60", nullable=False),
        sa.Column(
            "severity",
            enum("alert_severity", "critical", "warning", "info"),
            server_default="warning",
            nullable=False,
        ),
        sa.Column(
            "target_type",
            enum("alert_target_type", "all", "group", "node"),
            server_default="all",
            nullable=False,
        ),
        sa.Column(
            "target_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "notification",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "status",
            enum("alert_rule_status", "enabled", "disabled"),
            server_default="enabled",
            nullable=False,
        ),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        comment="alert rules",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_metric", "alert_rules"), "alert_rules", ["metric"])
    op.create_index(ix("idx_status", "alert_rules"), "alert_rules", ["status"])

    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "rule_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column(
            "current_value", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=False
        ),
        sa.Column("threshold", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=False),
        sa.Column(
            "severity",
            enum("alert_severity", "critical", "warning", "info"),
            nullable=False,
        ),
        sa.Column(
            "status",
            enum("alert_status", "firing", "resolved"),
            server_default="firing",
            nullable=False,
        ),
        sa.Column("fired_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column(
            "acknowledged_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        comment="alerts",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_fired_at", "alerts"), "alerts", ["fired_at"])
    op.create_index(ix("idx_node_id", "alerts"), "alerts", ["node_id"])
    op.create_index(ix("idx_rule_id", "alerts"), "alerts", ["rule_id"])
    op.create_index(ix("idx_status", "alerts"), "alerts", ["status"])

    op.create_table(
        "audit_logs",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "user_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            enum("audit_status", "success", "failed"),
            server_default="success",
            nullable=False,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("fold_key", sa.String(length=64), nullable=True),
        sa.Column("occurrences", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
        sa.UniqueConstraint("fold_key", name="uk_fold_key"),
        comment="audit log",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_action", "audit_logs"), "audit_logs", ["action"])
    op.create_index(ix("idx_created_at", "audit_logs"), "audit_logs", ["created_at"])
    op.create_index(
        ix("idx_resource", "audit_logs"), "audit_logs", ["resource_type", "resource_id"]
    )
    op.create_index(ix("idx_user_id", "audit_logs"), "audit_logs", ["user_id"])

    op.create_table(
        "job_claims",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job", "scheduled_at", name=op.f("pk_job_claims")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "node_groups",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column(
            "parent_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_groups")),
        comment="node groups",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_parent_id", "node_groups"), "node_groups", ["parent_id"])

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
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("cpu_usage", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("memory_usage", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("memory_used", sa.BigInteger(), nullable=True),
        sa.Column("disk_usage", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("disk_used", sa.BigInteger(), nullable=True),
        sa.Column("network_rx", sa.BigInteger(), nullable=True),
        sa.Column("network_tx", sa.BigInteger(), nullable=True),
        sa.Column("load_avg_1", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("load_avg_5", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("load_avg_15", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("process_count", sa.Integer(), nullable=True),
        sa.Column("tcp_connections", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_metrics")),
        comment="node metrics",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(
        ix("idx_node_timestamp", "node_metrics"), "node_metrics", ["node_id", "timestamp"]
    )
    op.create_index(ix("idx_timestamp", "node_metrics"), "node_metrics", ["timestamp"])

    op.create_table(
        "nodes",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("hostname", sa.String(length=128), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), server_default="9100", nullable=False),
        sa.Column(
            "group_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column("os", sa.String(length=32), nullable=True),
        sa.Column("arch", sa.String(length=16), nullable=True),
        sa.Column("kernel_version", sa.String(length=64), nullable=True),
        sa.Column("daemon_version", sa.String(length=32), nullable=True),
        sa.Column("cpu_cores", sa.Integer(), nullable=True),
        sa.Column("memory_total", sa.BigInteger(), nullable=True),
        sa.Column("disk_total", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            enum("node_status", "online", "offline", "unknown"),
            server_default="unknown",
            nullable=False,
        ),
        sa.Column("last_heartbeat", sa.DateTime(), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "labels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("uuid", name="uk_uuid"),
        comment="nodes",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_group_id", "nodes"), "nodes", ["group_id"])
    op.create_index(ix("idx_ip", "nodes"), "nodes", ["ip"])
    op.create_index(ix("idx_status", "nodes"), "nodes", ["status"])

    op.create_table(
        "task_executions",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "task_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            enum("execution_status", "pending", "running", "success", "failed", "timeout", "cancelled"),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column(
            "output",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column(
            "triggered_by",
            enum("execution_trigger", "manual", "schedule", "api"),
            server_default="manual",
            nullable=False,
        ),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_executions")),
        comment="task executions",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_created_at", "task_executions"), "task_executions", ["created_at"])
    op.create_index(ix("idx_execution_id", "task_executions"), "task_executions", ["execution_id"])
    op.create_index(ix("idx_node_id", "task_executions"), "task_executions", ["node_id"])
    op.create_index(ix("idx_status", "task_executions"), "task_executions", ["status"])
    op.create_index(ix("idx_task_id", "task_executions"), "task_executions", ["task_id"])

    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "type",
            enum("task_type", "script", "file", "service", "custom"),
            nullable=False,
        ),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("cron_expr", sa.String(length=64), nullable=True),
        sa.Column("timeout", sa.Integer(), server_default="300", nullable=False),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retry_interval", sa.Integer(), server_default="60", nullable=False),
        sa.Column(
            "target_type",
            enum("task_target_type", "node", "group", "tag", "all"),
            server_default="node",
            nullable=False,
        ),
        sa.Column(
            "target_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "status",
            enum("task_status", "enabled", "disabled"),
            server_default="enabled",
            nullable=False,
        ),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        comment="tasks",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_status", "tasks"), "tasks", ["status"])
    op.create_index(ix("idx_type", "tasks"), "tasks", ["type"])

    op.create_table(
        "update_records",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "component",
            enum("component", "daemon", "agent"),
            nullable=False,
        ),
        sa.Column("from_version", sa.String(length=32), nullable=True),
        sa.Column("to_version", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            enum("update_status", "pending", "downloading", "installing", "verifying", "success", "failed", "rollback"),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("progress", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_update_records")),
        comment="update records",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_batch_id", "update_records"), "update_records", ["batch_id"])
    op.create_index(ix("idx_node_id", "update_records"), "update_records", ["node_id"])
    op.create_index(ix("idx_status", "update_records"), "update_records", ["status"])

    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=128), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column(
            "role",
            enum("user_role", "admin", "operator", "viewer"),
            server_default="viewer",
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.SmallInteger()
            .with_variant(mysql.TINYINT(), "mariadb")
            .with_variant(mysql.TINYINT(), "mysql"),
            server_default="1",
            nullable=False,
        ),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.Column("last_login_ip", sa.String(length=45), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name="uk_email"),
        sa.UniqueConstraint("username", name="uk_username"),
        comment="users",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "versions",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "component",
            enum("component", "daemon", "agent"),
            nullable=False,
        ),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("file_path", sa.String(length=255), nullable=False),
        sa.Column("file_name", sa.String(length=128), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("hash_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("os", sa.String(length=32), server_default="linux", nullable=False),
        sa.Column("arch", sa.String(length=16), server_default="amd64", nullable=False),
        sa.Column("release_notes", sa.Text(), nullable=True),
        sa.Column(
            "is_latest",
            sa.SmallInteger()
            .with_variant(mysql.TINYINT(), "mariadb")
            .with_variant(mysql.TINYINT(), "mysql"),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint(
            "component", "version", "os", "arch", name="uk_component_version_os_arch"
        ),
        comment="release packages",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(ix("idx_component_latest", "versions"), "versions", ["component", "is_latest"])

    op.create_table(
        "agents",
        sa.Column(
            "id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql")
            .with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column(
            "status",
            enum("agent_status", "running", "stopped", "error", "unknown"),
            server_default="unknown",
            nullable=False,
        ),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("cpu_usage", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("memory_usage", sa.BigInteger(), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("restart_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name="fk_agents_node", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("node_id", name="uk_node_id"),
        comment="agents",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "token_families",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "user_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_token_families_user_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_families")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_token_families_expires_at", "token_families", ["expires_at"])
    op.create_index("idx_token_families_user_id", "token_families", ["user_id"])

    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=36), nullable=False),
        sa.Column("family_id", sa.String(length=36), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["token_families.id"],
            name=op.f("fk_refresh_tokens_family_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_refresh_tokens")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_refresh_tokens_family_id", "refresh_tokens", ["family_id"])


def downgrade() -> None:
    # Indexes backing a foreign key go with their table: MySQL refuses to drop them first.
    op.drop_table("refresh_tokens")
    op.drop_index("idx_token_families_expires_at", table_name="token_families")

    op.drop_table("token_families")
    op.drop_table("agents")
    op.drop_index(ix("idx_component_latest", "versions"), table_name="versions")

    op.drop_table("versions")
    op.drop_table("users")
    op.drop_index(ix("idx_status", "update_records"), table_name="update_records")
    op.drop_index(ix("idx_node_id", "update_records"), table_name="update_records")
    op.drop_index(ix("idx_batch_id", "update_records"), table_name="update_records")

    op.drop_table("update_records")
    op.drop_index(ix("idx_type", "tasks"), table_name="tasks")
    op.drop_index(ix("idx_status", "tasks"), table_name="tasks")

    op.drop_table("tasks")
    op.drop_index(ix("idx_task_id", "task_executions"), table_name="task_executions")
    op.drop_index(ix("idx_status", "task_executions"), table_name="task_executions")
    op.drop_index(ix("idx_node_id", "task_executions"), table_name="task_executions")
    op.drop_index(ix("idx_execution_id", "task_executions"), table_name="task_executions")
    op.drop_index(ix("idx_created_at", "task_executions"), table_name="task_executions")

    op.drop_table("task_executions")
    op.drop_index(ix("idx_status", "nodes"), table_name="nodes")
    op.drop_index(ix("idx_ip", "nodes"), table_name="nodes")
    op.drop_index(ix("idx_group_id", "nodes"), table_name="nodes")

    op.drop_table("nodes")
    op.drop_index(ix("idx_timestamp", "node_metrics"), table_name="node_metrics")
    op.drop_index(ix("idx_node_timestamp", "node_metrics"), table_name="node_metrics")

    op.drop_table("node_metrics")
    op.drop_index(ix("idx_parent_id", "node_groups"), table_name="node_groups")

    op.drop_table("node_groups")
    op.drop_table("job_claims")
    op.drop_index(ix("idx_user_id", "audit_logs"), table_name="audit_logs")
    op.drop_index(ix("idx_resource", "audit_logs"), table_name="audit_logs")
    op.drop_index(ix("idx_created_at", "audit_logs"), table_name="audit_logs")
    op.drop_index(ix("idx_action", "audit_logs"), table_name="audit_logs")

    op.drop_table("audit_logs")
    op.drop_index(ix("idx_status", "alerts"), table_name="alerts")
    op.drop_index(ix("idx_rule_id", "alerts"), table_name="alerts")
    op.drop_index(ix("idx_node_id", "alerts"), table_name="alerts")
    op.drop_index(ix("idx_fired_at", "alerts"), table_name="alerts")

    op.drop_table("alerts")
    op.drop_index(ix("idx_status", "alert_rules"), table_name="alert_rules")
    op.drop_index(ix("idx_metric", "alert_rules"), table_name="alert_rules")

    op.drop_table("alert_rules")
