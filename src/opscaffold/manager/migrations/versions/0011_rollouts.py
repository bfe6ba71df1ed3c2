"""rollouts: a deploy's waves, settings and status, in the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 06:00:00

A rollout is a row of its own, so every replica (and a restarted one) knows which nodes it
holds, which wave it is in and whether it is paused; each update record says which wave it
belongs to, which command carried its order and when its node last reported on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from opscaffold.manager.migrations.helpers import enum, updated_at_default

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigRef = sa.BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("component", enum("component", "daemon", "agent"), nullable=False),
        sa.Column("version_id", BigRef, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column(
            "strategy", enum("rollout_strategy", "all", "rolling", "canary"), nullable=False
        ),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("max_failures", sa.Integer(), nullable=False),
        sa.Column("canary_size", sa.Integer(), nullable=False),
        sa.Column("bake_seconds", sa.Integer(), nullable=False),
        sa.Column("total_waves", sa.Integer(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_done_at", sa.DateTime(), nullable=True),
        sa.Column("accepted_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resumed_wave", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "status",
            enum("rollout_status", "running", "paused", "cancelled", "completed", "failed"),
            server_default="running",
            nullable=False,
        ),
        sa.Column("reason", sa.String(512), nullable=True),
        sa.Column("wait_seconds", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", BigRef, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("rollback_of", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_rollouts")),
        comment="rollouts of a version to nodes, wave by wave",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_rollouts_status", "rollouts", ["status"])
    op.create_index("idx_rollouts_created_at", "rollouts", ["created_at"])
    with op.batch_alter_table("update_records") as batch:
        batch.add_column(sa.Column("wave", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("command_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("reported_at", sa.DateTime(), nullable=True))
    op.create_index("idx_update_records_batch_wave", "update_records", ["batch_id", "wave"])


def downgrade() -> None:
    op.drop_index("idx_update_records_batch_wave", table_name="update_records")
    with op.batch_alter_table("update_records") as batch:
        batch.drop_column("reported_at")
        batch.drop_column("command_id")
        batch.drop_column("wave")
    op.drop_index("idx_rollouts_created_at", table_name="rollouts")
    op.drop_index("idx_rollouts_status", table_name="rollouts")
    op.drop_table("rollouts")
