"""versions keep the manifest their signature covers and the key that made it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 05:15:00

A package's signature covers a manifest (component, version, os, arch, size, sha256,
created_at), not the file's hash alone; the manifest's exact text is kept so a daemon or an
operator can check the signature, and the signing key's fingerprint says who vouched for it.
Both are empty for rows made before packages were signed this way.

`version_locks` holds one row per component, locked while a package of it is added or
removed, so that concurrent changes agree on which version is the latest.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COMPONENTS = ("daemon", "agent")


def upgrade() -> None:
    op.add_column("versions", sa.Column("manifest", sa.Text(), nullable=True))
    op.add_column("versions", sa.Column("key_fingerprint", sa.String(64), nullable=True))
    locks = op.create_table(
        "version_locks",
        sa.Column("component", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("component", name=op.f("pk_version_locks")),
        comment="serialises changes to the versions of a component",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.bulk_insert(locks, [{"component": component} for component in COMPONENTS])


def downgrade() -> None:
    op.drop_table("version_locks")
    with op.batch_alter_table("versions") as batch_op:  # SQLite cannot drop a column in place
        batch_op.drop_column("key_fingerprint")
        batch_op.drop_column("manifest")
