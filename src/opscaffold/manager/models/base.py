"""Column types shared by every table, rendered as the spec's MySQL DDL and portably elsewhere."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase

# Names for constraints and indexes the spec does not name, so migrations stay deterministic.
NAMING_CONVENTION = {
    "ix": "idx_%(table_name)s_%(column_0_N_name)s",
    "uq": "uk_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# BIGINT UNSIGNED on MySQL; SQLite needs INTEGER for a rowid alias (AUTOINCREMENT).
BigId = (
    sa.BigInteger()
    .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
    .with_variant(sqlite.INTEGER(), "sqlite")
)
# A reference to a BigId column.
BigRef = sa.BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
TinyInt = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql", "mariadb")
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Percent = sa.Numeric(5, 2, asdecimal=False)


def exact_string(length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR compared byte for byte on every database: MySQL's default collation would
    also equate case, accents and trailing blanks, which SQLite and PostgreSQL do not."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb"
    )


# For keys folded in Python (usernames, tags): equal after folding means equal bytes.
BinaryKey = exact_string(64)


def enum(name: str, *values: str) -> sa.types.TypeEngine[str]:
    """A native ENUM on MySQL (as the spec), a checked VARCHAR elsewhere (no PG types to manage)."""
    portable = sa.Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
    )
    return portable.with_variant(mysql.ENUM(*values), "mysql", "mariadb")


def now_default() -> sa.TextClause:
    return sa.text("CURRENT_TIMESTAMP")
