"""command outcomes: a command can end `failed`, with the daemon's reason

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 04:30:00

`node_commands.state` gains `failed` and `node_commands.error` holds why. Downgrading turns
failed commands into done ones (what they were shown as before) and drops the reasons.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "node_commands"
BEFORE = ("pending", "sent", "done", "expired")
AFTER = (*BEFORE, "failed")
# The models' naming convention names the enum's CHECK (PostgreSQL and SQLite) like this.
CHECK = "ck_node_commands_node_command_state"


def upgrade() -> None:
    _states(BEFORE, AFTER)
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute(sa.text(f"UPDATE {TABLE} SET state = 'done' WHERE state = 'failed'"))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("error")
    _states(AFTER, BEFORE)


def _states(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    dialect = op.get_context().dialect.name
    if dialect in ("mysql", "mariadb"):
        op.alter_column(
            TABLE,
            "state",
            existing_type=mysql.ENUM(*old),
            type_=mysql.ENUM(*new),
            existing_nullable=False,
            existing_server_default="pending",
        )
        return
    check = sa.column("state").in_(new)
    if dialect == "sqlite":  # no ALTER of constraints: the table is copied
        with op.batch_alter_table(TABLE, recreate="always") as batch:
            batch.drop_constraint(op.f(CHECK), type_="check")
            batch.create_check_constraint(op.f(CHECK), check)
        return
    op.drop_constraint(op.f(CHECK), TABLE, type_="check")
    op.create_check_constraint(op.f(CHECK), TABLE, check)
