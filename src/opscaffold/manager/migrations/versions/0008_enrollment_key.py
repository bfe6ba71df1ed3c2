"""nodes remember the key of the daemon that enrolled them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:40:00

A node not yet heard from may be enrolled again (its first answer was lost), but only by the
daemon holding the key it enrolled with, whose SHA-256 this column keeps.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("enrollment_key_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch_op:  # SQLite cannot drop a column in place
        batch_op.drop_column("enrollment_key_hash")
