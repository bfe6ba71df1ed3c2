"""Portable SQL helpers: upserts (MySQL's ON DUPLICATE KEY, PostgreSQL's / SQLite's ON CONFLICT)
and substring search."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

# Given the proposed row (its columns by name), the values to set on the existing one.
UpdateFn = Callable[[Any], Mapping[str, Any]]


def dialect_of(session: AsyncSession | AsyncConnection) -> str:
    bind = session if isinstance(session, AsyncConnection) else session.get_bind()
    name = bind.dialect.name
    return "mysql" if name == "mariadb" else name


def upsert(
    session: AsyncSession | AsyncConnection,
    table: sa.Table | Any,
    conflict_keys: Sequence[str],
    update: UpdateFn | None,
) -> Any:
    """An INSERT that, on a duplicate key, applies `update` (None: keeps the existing row)."""
    dialect = dialect_of(session)
    if dialect == "mysql":
        stmt: Any = mysql.insert(table)
        if update is None:
            first = conflict_keys[0]
            return stmt.on_duplicate_key_update({first: stmt.inserted[first]})
        return stmt.on_duplicate_key_update(dict(update(stmt.inserted)))
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if update is None:
        return stmt.on_conflict_do_nothing(index_elements=list(conflict_keys))
    return stmt.on_conflict_do_update(
        index_elements=list(conflict_keys), set_=dict(update(stmt.excluded))
    )


def contains_text(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None], keyword: str
) -> ColumnElement[bool]:
    """`column` contains `keyword` literally (LIKE wildcards escaped), ignoring case on every
    database (PostgreSQL's LIKE would not). Folding case costs about three LIKEs on
    PostgreSQL, so a keyword without letters skips it."""
    if keyword.lower() == keyword.upper():
        return column.contains(keyword, autoescape=True)
    return column.icontains(keyword, autoescape=True)
