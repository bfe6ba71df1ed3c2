"""tasks: what an execution needs to be dispatched, timed out and reported exactly once

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:30:00

Each execution row knows the command that carried its envelope, the moment after which no
result can be expected (`deadline_at`, checked by the timeout job through an index), whether the
Agent truncated its output, and when its node last reported on it. A node has at most one row
per execution, which makes a resent result land on the same row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TinyInt = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("task_executions") as batch:
        batch.add_column(sa.Column("command_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("deadline_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reported_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("output_truncated", TinyInt, server_default="0", nullable=False)
        )
    op.create_index(
        "uk_task_executions_execution_node",
        "task_executions",
        ["execution_id", "node_id"],
        unique=True,
    )
    op.create_index(
        "idx_task_executions_status_deadline", "task_executions", ["status", "deadline_at"]
    )


def downgrade() -> None:
    op.drop_index("idx_task_executions_status_deadline", table_name="task_executions")
    op.drop_index("uk_task_executions_execution_node", table_name="task_executions")
    with op.batch_alter_table("task_executions") as batch:
        batch.drop_column("output_truncated")
        batch.drop_column("reported_at")
        batch.drop_column("deadline_at")
        batch.drop_column("command_id")
