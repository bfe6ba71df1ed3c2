from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import (
    Base,
    BigId,
    BigRef,
    BinaryKey,
    TinyInt,
    enum,
    now_default,
)
from opscaffold.manager.user.names import canonical_username

ROLES = ("admin", "operator", "viewer")


def _username_key(context: DefaultExecutionContext) -> str:
    params = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return canonical_username(str(params["username"]))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("username", name="uk_username"),
        sa.UniqueConstraint("username_key", name="uk_username_key"),
        sa.UniqueConstraint("email", name="uk_email"),
        {"comment": "users", "mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(128))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    role: Mapped[str] = mapped_column(enum("user_role", *ROLES), server_default="viewer")
    # 0 disabled, 1 enabled (spec).
    status: Mapped[int] = mapped_column(TinyInt, server_default="1")
    last_login_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    last_login_ip: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )
    # canonical_username(username), set on insert: what lookups, uniqueness and the login
    # throttle compare, so `Admin` cannot be created beside `admin`.
    username_key: Mapped[str] = mapped_column(BinaryKey, default=_username_key)


class TokenFamily(Base):
    """One login session: every refresh token issued from one login shares a family.

    Re-using a rotated refresh token revokes the whole family (token theft detection); logout
    revokes it too. Access tokens name their family, so revocation ends them as well.
    """

    __tablename__ = "token_families"
    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigRef, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(32))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},)

    jti: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("token_families.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    # Set once, when this token is exchanged; a second exchange is a replay.
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
