"""task output: a running execution's output, part by part, as its node sends it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 10:30:00

A node sends its output while the task runs, each part with the byte offset where it starts;
a part is a row, unique per (execution, node, offset), so a resent part is stored once. The
rows are kept while the execution runs; its final result holds the whole output.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, sqlite

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = (
    sa.BigInteger()
    .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
    .with_variant(sqlite.INTEGER(), "sqlite")
)
BigRef = sa.BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "task_output_chunks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("node_id", BigRef, nullable=False),
        sa.Column("start_offset", sa.BigInteger(), nullable=False),
        sa.Column("end_offset", sa.BigInteger(), nullable=False),
        sa.Column("data", MediumText, nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_output_chunks")),
        sa.UniqueConstraint(
            "execution_id", "node_id", "start_offset", name="uk_task_output_chunks_part"
        ),
        comment="task output while the execution runs",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("task_output_chunks")
