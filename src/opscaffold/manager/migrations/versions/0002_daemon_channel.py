"""daemon channel

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:22:06.595446
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

from opscaffold.manager.migrations.helpers import enum, ix

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
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
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=12), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
        sa.UniqueConstraint("token_hash", name="uk_enrollment_token_hash"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "node_configs",
        sa.Column("scope", enum("node_config_scope", "group", "node"), nullable=False),
        sa.Column(
            "scope_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "updated_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", name=op.f("pk_node_configs")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "node_commands",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "state",
            enum("node_command_state", "pending", "sent", "done", "expired"),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_via", sa.String(length=16), nullable=True),
        sa.Column(
            "created_by",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_commands_node_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_commands")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_node_commands_node_id_state", "node_commands", ["node_id", "state"])
    op.create_index("idx_node_commands_state_expires_at", "node_commands", ["state", "expires_at"])

    op.create_table(
        "node_credentials",
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_credentials_node_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_credentials")),
        sa.UniqueConstraint("token_hash", name="uk_node_token_hash"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "node_events",
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
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_events_node_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_events")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_node_events_node_id_at", "node_events", ["node_id", "at"])

    op.create_table(
        "node_labels",
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("value", sa.String(length=191), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_labels_node_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", "key", name=op.f("pk_node_labels")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_node_labels_key_value", "node_labels", ["key", "value", "node_id"])

    op.create_table(
        "node_metrics_latest",
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
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_node_metrics_latest_node_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_metrics_latest")),
        comment="latest metrics per node",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "node_tags",
        sa.Column(
            "node_id",
            sa.BigInteger()
            .with_variant(mysql.BIGINT(unsigned=True), "mariadb")
            .with_variant(mysql.BIGINT(unsigned=True), "mysql"),
            nullable=False,
        ),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_tags_node_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", "tag", name=op.f("pk_node_tags")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_node_tags_tag", "node_tags", ["tag", "node_id"])

    op.add_column("nodes", sa.Column("peer_ip", sa.String(length=45), nullable=True))
    # A report sent twice is stored once: the natural key becomes unique.
    op.drop_index(ix("idx_node_timestamp", "node_metrics"), table_name="node_metrics")
    op.create_index(
        ix("idx_node_timestamp", "node_metrics"),
        "node_metrics",
        ["node_id", "timestamp"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(ix("idx_node_timestamp", "node_metrics"), table_name="node_metrics")
    op.create_index(
        ix("idx_node_timestamp", "node_metrics"), "node_metrics", ["node_id", "timestamp"]
    )
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.drop_column("peer_ip")
    op.drop_table("node_tags")
    op.drop_table("node_metrics_latest")
    op.drop_table("node_labels")
    op.drop_table("node_events")
    op.drop_table("node_credentials")
    op.drop_table("node_commands")
    op.drop_table("node_configs")
    op.drop_table("enrollment_tokens")
