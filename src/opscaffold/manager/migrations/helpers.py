"""What migrations share: index names per dialect and MySQL's auto-updated timestamps."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql


def _dialect() -> str:
    return op.get_context().dialect.name


def ix(name: str, table: str) -> str:
    """The spec's index name on MySQL, where index names are per table; on PostgreSQL and
    SQLite they share one namespace per schema, so there the table name qualifies them."""
    return name if _dialect() in ("mysql", "mariadb") else f"{table}_{name}"


def updated_at_default() -> sa.TextClause:
    if _dialect() in ("mysql", "mariadb"):
        return sa.text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")
    return sa.text("CURRENT_TIMESTAMP")


def enum(name: str, *values: str) -> sa.types.TypeEngine[str]:
    """MySQL ENUM as in the spec; a VARCHAR with a CHECK elsewhere (no PostgreSQL types)."""
    portable = sa.Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
    )
    return portable.with_variant(mysql.ENUM(*values), "mysql", "mariadb")
