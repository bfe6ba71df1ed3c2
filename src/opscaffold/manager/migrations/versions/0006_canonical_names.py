"""compare usernames and node tags the same way on every database

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 04:40:00

`users.username_key` holds the canonical form of each username (case-folded, without accents,
invisible characters or surrounding blanks), unique and compared byte for byte; lookups and
the login throttle use it. `node_tags.tag` holds each tag case-folded (the node's `tags`
column keeps the spelling given), so a tag filter ignores case on every database. On MySQL
both columns are `utf8mb4_bin`: its default collation would also equate accents and trailing
blanks.

Two existing users whose names have one canonical form stop the upgrade: rename one first.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOOKALIKES = str.maketrans({"ı": "i", "ĸ": "k", "ø": "o", "đ": "d", "ħ": "h", "ł": "l"})
_USERS = sa.table(
    "users",
    sa.column("id", sa.BigInteger),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
)
_TAGS = sa.table("node_tags", sa.column("node_id", sa.BigInteger), sa.column("tag", sa.String))


# A copy of opscaffold.manager.user.names.canonical_username as of this revision.
def _canonical_username(name: str) -> str:
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    kept = "".join(
        c
        for c in folded
        if not unicodedata.combining(c) and unicodedata.category(c) not in ("Cf", "Cc")
    )
    return unicodedata.normalize("NFKC", kept.translate(_LOOKALIKES)).strip()


def _is_mysql() -> bool:
    return op.get_context().dialect.name in ("mysql", "mariadb")


def _name(collation: str | None) -> sa.types.TypeEngine[str]:
    return sa.String(64).with_variant(mysql.VARCHAR(64, collation=collation), "mysql", "mariadb")


def upgrade() -> None:
    if not context.is_offline_mode():
        _refuse_clashing_names(op.get_bind())  # before any change: nothing half done
    op.add_column("users", sa.Column("username_key", _name("utf8mb4_bin"), nullable=True))
    if _is_mysql():
        op.alter_column(
            "node_tags",
            "tag",
            existing_type=sa.String(64),
            type_=_name("utf8mb4_bin"),
            existing_nullable=False,
        )
    if not context.is_offline_mode():
        _fill_username_keys(op.get_bind())
        _fold_tags(op.get_bind())
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("username_key", existing_type=_name("utf8mb4_bin"), nullable=False)
        batch_op.create_unique_constraint("uk_username_key", ["username_key"])


def _refuse_clashing_names(conn: sa.Connection) -> None:
    by_key: dict[str, list[str]] = {}
    for (username,) in conn.execute(sa.select(_USERS.c.username).order_by(_USERS.c.id)):
        by_key.setdefault(_canonical_username(username), []).append(username)
    clashes = [names for names in by_key.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(", ".join(repr(n) for n in names) for names in clashes)
        raise RuntimeError(
            "usernames must differ in more than letter case, accents or blanks, but these "
            f"do not: {listed}. Rename all but one of each, then migrate again."
        )


def _fill_username_keys(conn: sa.Connection) -> None:
    rows = conn.execute(sa.select(_USERS.c.id, _USERS.c.username)).all()
    for user_id, username in rows:
        conn.execute(
            _USERS.update()
            .where(_USERS.c.id == user_id)
            .values(username_key=_canonical_username(username))
        )


def _fold_tags(conn: sa.Connection) -> None:
    rows = conn.execute(sa.select(_TAGS.c.node_id, _TAGS.c.tag)).all()
    kept = {(node_id, tag) for node_id, tag in rows if tag == tag.casefold()}
    for node_id, tag in rows:
        folded = tag.casefold()
        if folded == tag:
            continue
        if len(folded) > 64:
            raise RuntimeError(
                f"node {node_id}: tag {tag!r} is longer than 64 characters once case-folded; "
                "shorten it (PUT /api/v1/nodes/{id}), then migrate"
            )
        where = (_TAGS.c.node_id == node_id) & (_TAGS.c.tag == tag)
        conn.execute(_TAGS.delete().where(where))
        if (node_id, folded) not in kept:
            conn.execute(_TAGS.insert().values(node_id=node_id, tag=folded))
            kept.add((node_id, folded))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint("uk_username_key", type_="unique")
        batch_op.drop_column("username_key")
    if _is_mysql():
        op.alter_column(
            "node_tags",
            "tag",
            existing_type=_name("utf8mb4_bin"),
            type_=sa.String(64),
            existing_nullable=False,
        )
