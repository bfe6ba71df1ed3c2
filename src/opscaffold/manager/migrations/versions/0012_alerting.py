"""alerting: rule conditions kept in the database, one open alert per condition, silences

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 07:30:00

Rules gain `keep_firing_for` and the `tag` target. Thresholds and values widen to
DECIMAL(20,2), as byte counts pass what DECIMAL(10,2) holds. `alerts.open_key` is unique and
set only while an alert fires, so a condition has at most one open alert. `alert_conditions`
holds each (rule, node) pending or firing, `alert_silences` the silences, and
`alert_evaluator` the one row every evaluation locks first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from opscaffold.manager.migrations.helpers import enum

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = (
    sa.BigInteger()
    .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
    .with_variant(sa.INTEGER(), "sqlite")
)
BigRef = sa.BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
NARROW = sa.Numeric(precision=10, scale=2, asdecimal=False)
WIDE = sa.Numeric(precision=20, scale=2, asdecimal=False)
TARGETS_BEFORE = ("all", "group", "node")
TARGETS_AFTER = ("all", "group", "tag", "node")
# The models' naming convention names the enum's CHECK (PostgreSQL and SQLite) like this.
TARGET_CHECK = "ck_alert_rules_alert_target_type"


def upgrade() -> None:
    _targets(TARGETS_BEFORE, TARGETS_AFTER)
    with op.batch_alter_table("alert_rules") as batch:
        batch.alter_column("threshold", existing_type=NARROW, type_=WIDE, existing_nullable=False)
        batch.add_column(
            sa.Column("keep_firing_for", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column(
            "current_value", existing_type=NARROW, type_=WIDE, existing_nullable=False
        )
        batch.alter_column("threshold", existing_type=NARROW, type_=WIDE, existing_nullable=False)
        batch.add_column(sa.Column("open_key", sa.String(48), nullable=True))
        batch.create_unique_constraint("uk_open_key", ["open_key"])
    op.create_table(
        "alert_conditions",
        sa.Column("key", sa.String(48), nullable=False),
        sa.Column("rule_id", BigRef, nullable=False),
        sa.Column("node_id", BigRef, nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("fired_at", sa.DateTime(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_conditions")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "alert_silences",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "target_type",
            enum("alert_silence_target", "rule", "node", "group", "tag"),
            nullable=False,
        ),
        sa.Column("target_value", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", BigRef, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("idx_alert_silences_ends_at", "alert_silences", ["ends_at"])
    evaluator = op.create_table(
        "alert_evaluator",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_evaluator")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.bulk_insert(evaluator, [{"id": 1, "evaluated_at": None}])


def downgrade() -> None:
    op.drop_table("alert_evaluator")
    op.drop_index("idx_alert_silences_ends_at", table_name="alert_silences")
    op.drop_table("alert_silences")
    op.drop_table("alert_conditions")
    # Values past DECIMAL(10,2) cannot go back: they are capped at its largest.
    for table, column in (
        ("alerts", "current_value"),
        ("alerts", "threshold"),
        ("alert_rules", "threshold"),
    ):
        op.execute(
            sa.text(
                f"UPDATE {table} SET {column} = CASE WHEN {column} > 99999999.99 "
                f"THEN 99999999.99 ELSE -99999999.99 END "
                f"WHERE {column} > 99999999.99 OR {column} < -99999999.99"
            )
        )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("uk_open_key", type_="unique")
        batch.drop_column("open_key")
        batch.alter_column("threshold", existing_type=WIDE, type_=NARROW, existing_nullable=False)
        batch.alter_column(
            "current_value", existing_type=WIDE, type_=NARROW, existing_nullable=False
        )
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("keep_firing_for")
        batch.alter_column("threshold", existing_type=WIDE, type_=NARROW, existing_nullable=False)
    # Tag rules have no target the old schema can express: they go.
    op.execute(sa.text("DELETE FROM alert_rules WHERE target_type = 'tag'"))
    _targets(TARGETS_AFTER, TARGETS_BEFORE)


def _targets(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    dialect = op.get_context().dialect.name
    if dialect in ("mysql", "mariadb"):
        op.alter_column(
            "alert_rules",
            "target_type",
            existing_type=mysql.ENUM(*old),
            type_=mysql.ENUM(*new),
            existing_nullable=False,
            existing_server_default="all",
        )
        return
    check = sa.column("target_type").in_(new)
    if dialect == "sqlite":  # no ALTER of constraints: the table is copied
        with op.batch_alter_table("alert_rules", recreate="always") as batch:
            batch.drop_constraint(op.f(TARGET_CHECK), type_="check")
            batch.create_check_constraint(op.f(TARGET_CHECK), check)
        return
    op.drop_constraint(op.f(TARGET_CHECK), "alert_rules", type_="check")
    op.create_check_constraint(op.f(TARGET_CHECK), "alert_rules", check)
