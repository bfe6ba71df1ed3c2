"""notifications: alert notification channels and the delivery queue

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 06:00:00

Channels say where alert notifications go (webhook, robots of DingTalk, WeCom and Feishu,
email); each notification to send is a row of its own, claimed by one sender at a time
under a lease, so a restarted or crashed Manager loses none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql, sqlite

from opscaffold.manager.migrations.helpers import enum, updated_at_default

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = (
    sa.BigInteger()
    .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
    .with_variant(sqlite.INTEGER(), "sqlite")
)
BigRef = sa.BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
TinyInt = sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql", "mariadb")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column(
            "type",
            enum("notification_channel_type", "webhook", "email", "dingtalk", "wecom", "feishu"),
            nullable=False,
        ),
        sa.Column("config", Json, nullable=False),
        sa.Column("enabled", TinyInt, server_default="1", nullable=False),
        sa.Column("created_by", BigRef, nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=updated_at_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
        sa.UniqueConstraint("name", name="uk_notification_channels_name"),
        comment="where alert notifications are sent",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel_id", BigRef, nullable=False),
        sa.Column("alert_id", BigRef, nullable=True),
        sa.Column(
            "event", enum("notification_event", "firing", "resolved", "test"), nullable=False
        ),
        sa.Column("payload", Json, nullable=False),
        sa.Column(
            "status",
            enum("notification_status", "pending", "sending", "sent", "failed"),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        comment="alert notifications to send, sent or given up",
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(
        "idx_notification_deliveries_due",
        "notification_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "idx_notification_deliveries_lease", "notification_deliveries", ["status", "lease_until"]
    )
    op.create_index("idx_notification_deliveries_alert", "notification_deliveries", ["alert_id"])


def downgrade() -> None:
    op.drop_index("idx_notification_deliveries_alert", table_name="notification_deliveries")
    op.drop_index("idx_notification_deliveries_lease", table_name="notification_deliveries")
    op.drop_index("idx_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_channels")
