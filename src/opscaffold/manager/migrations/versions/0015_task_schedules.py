"""task schedules: each task's next due time, found through an index, and its misfire policy

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:00:00

The scheduler finds due tasks with one range read of the (status, next_run_at) index
(`status = 'enabled' AND next_run_at <= now`, in due order) instead of reading every cron
expression each tick; `misfire` says whether a fire missed while no Manager ran
runs once late (`run_once`) or is skipped (`skip`, the default). Tasks that already have a
schedule are marked due now: the scheduler's first pass sets their real next time without
firing them (a due time that is no scheduled time never fires).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

from opscaffold.manager.migrations.helpers import enum

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "idx_tasks_status_next_run_at"
# The models' naming convention names the enum's CHECK (PostgreSQL and SQLite) like this.
MISFIRE_CHECK = "ck_tasks_task_misfire"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("next_run_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column(
                "misfire",
                enum("task_misfire", "skip", "run_once"),
                server_default="skip",
                nullable=False,
            )
        )
    op.create_index(INDEX, "tasks", ["status", "next_run_at"])
    if not context.is_offline_mode():  # the generated DDL makes an empty database
        tasks = sa.table(
            "tasks",
            sa.column("next_run_at", sa.DateTime()),
            sa.column("cron_expr", sa.String()),
            sa.column("status", sa.String()),
        )
        op.execute(
            tasks.update()
            .where(tasks.c.cron_expr.is_not(None), tasks.c.status == "enabled")
            .values(next_run_at=datetime.now(UTC).replace(tzinfo=None, microsecond=0))
        )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        if op.get_context().dialect.name not in ("mysql", "mariadb"):  # a native ENUM there
            batch.drop_constraint(op.f(MISFIRE_CHECK), type_="check")
        batch.drop_column("misfire")
        batch.drop_column("next_run_at")
