"""compare version strings byte for byte on every database

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:50:00

Pre-release identifiers are case-sensitive (`1.0.0-RC.1` is not `1.0.0-rc.1`), as SQLite and
PostgreSQL compare them. MySQL's default collation equated the two, so the second upload was
refused as a duplicate there; `versions.version` and `update_records.from_version` /
`to_version` become `utf8mb4_bin`. Nothing changes on the other databases.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("versions", "version", False),
    ("update_records", "from_version", True),
    ("update_records", "to_version", False),
)


def _is_mysql() -> bool:
    return op.get_context().dialect.name in ("mysql", "mariadb")


def _type(collation: str | None) -> sa.types.TypeEngine[str]:
    return sa.String(32).with_variant(mysql.VARCHAR(32, collation=collation), "mysql", "mariadb")


def _change(to: str | None, was: str | None) -> None:
    if not _is_mysql():
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=_type(was),
            type_=_type(to),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    _change("utf8mb4_bin", None)


def downgrade() -> None:
    _change(None, "utf8mb4_bin")
