"""index the offline check: online nodes by last heartbeat

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from opscaffold.manager.migrations.helpers import ix

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(ix("idx_status_heartbeat", "nodes"), "nodes", ["status", "last_heartbeat"])


def downgrade() -> None:
    op.drop_index(ix("idx_status_heartbeat", "nodes"), table_name="nodes")
