from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import Base, BigId, BigRef, Json, enum, now_default


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        sa.Index("idx_user_id", "user_id"),
        sa.Index("idx_action", "action"),
        sa.Index("idx_resource", "resource_type", "resource_id"),
        sa.Index("idx_created_at", "created_at"),
        sa.UniqueConstraint("fold_key", name="uk_fold_key"),
        {"comment": "audit log", "mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigRef)
    username: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    resource_type: Mapped[str] = mapped_column(sa.String(32))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)
    ip: Mapped[str] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(
        enum("audit_status", "success", "failed"), server_default="success"
    )
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    # Ours: repeated failures from one source fold into one row per minute.
    fold_key: Mapped[str | None] = mapped_column(sa.String(64))
    occurrences: Mapped[int] = mapped_column(sa.Integer, server_default="1", default=1)
