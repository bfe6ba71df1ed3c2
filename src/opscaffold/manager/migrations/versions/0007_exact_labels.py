"""compare node labels byte for byte on every database

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 05:00:00

Label selectors are exact (`env=Prod` is not `env=prod`), as on SQLite and PostgreSQL. On
MySQL the default collation equated case, accents and trailing blanks, so selectors matched
more there and a node reporting both `Env` and `env` could not be stored; `node_labels.key`
and `.value` become `utf8mb4_bin`. Nothing changes on the other databases.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("key", 63), ("value", 191))


def _is_mysql() -> bool:
    return op.get_context().dialect.name in ("mysql", "mariadb")


def _type(length: int, collation: str | None) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, collation=collation), "mysql", "mariadb"
    )


def upgrade() -> None:
    if not _is_mysql():
        return
    for name, length in COLUMNS:
        op.alter_column(
            "node_labels",
            name,
            existing_type=_type(length, None),
            type_=_type(length, "utf8mb4_bin"),
            existing_nullable=False,
        )


def downgrade() -> None:
    if not _is_mysql():
        return
    for name, length in COLUMNS:
        op.alter_column(
            "node_labels",
            name,
            existing_type=_type(length, "utf8mb4_bin"),
            type_=_type(length, None),
            existing_nullable=False,
        )
