"""Alert notifications: where they go (channels) and each one to send (deliveries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import (
    Base,
    BigId,
    BigRef,
    Json,
    TinyInt,
    enum,
    now_default,
)

TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
CHANNEL_TYPES = ("webhook", "email", "dingtalk", "wecom", "feishu")
EVENTS = ("firing", "resolved", "test")
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")


class NotificationChannel(Base):
    __tablename__ = "notification_channels"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uk_notification_channels_name"),
        {"comment": "where alert notifications are sent", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    type: Mapped[str] = mapped_column(enum("notification_channel_type", *CHANNEL_TYPES))
    # The type's settings, secrets included (never returned by the API).
    config: Mapped[dict[str, Any]] = mapped_column(Json)
    enabled: Mapped[int] = mapped_column(TinyInt, server_default="1", default=1)
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )


class NotificationDelivery(Base):
    """One notification to one channel, sent at least once by the `notification.deliver`
    job: claimed (status `sending` until `lease_until`, by `claimed_by`), sent outside any
    transaction, then `sent`, or `pending` again for a retry, or `failed` for good."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.Index("idx_notification_deliveries_due", "status", "next_attempt_at"),
        sa.Index("idx_notification_deliveries_lease", "status", "lease_until"),
        sa.Index("idx_notification_deliveries_alert", "alert_id"),
        {"comment": "alert notifications to send, sent or given up", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(BigRef)
    alert_id: Mapped[int | None] = mapped_column(BigRef)  # none for a channel's test message
    event: Mapped[str] = mapped_column(enum("notification_event", *EVENTS))
    # The alert as it was when the event happened, rendered at enqueue time.
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(
        enum("notification_status", *DELIVERY_STATUSES), server_default="pending", default="pending"
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(sa.DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(36))
    last_error: Mapped[str | None] = mapped_column(sa.String(512))
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
