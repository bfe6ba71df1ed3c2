"""Versions (release packages) and the per-node records of rolling them out."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models.base import (
    Base,
    BigId,
    BigRef,
    TinyInt,
    enum,
    exact_string,
    now_default,
)

TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
COMPONENTS = ("daemon", "agent")
# A rollout is over for a node once its record reaches one of these.
FINAL_UPDATE_STATUSES = ("success", "failed", "rollback")
UPDATE_STATUSES = (
    "pending",
    "downloading",
    "installing",
    "verifying",
    "success",
    "failed",
    "rollback",
)


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (
        sa.UniqueConstraint(
            "component", "version", "os", "arch", name="uk_component_version_os_arch"
        ),
        sa.Index("idx_component_latest", "component", "is_latest"),
        {"comment": "release packages", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    component: Mapped[str] = mapped_column(enum("component", *COMPONENTS))
    # Exact: pre-release identifiers are case-sensitive (`1.0.0-RC.1` is not `1.0.0-rc.1`).
    version: Mapped[str] = mapped_column(exact_string(32))
    file_path: Mapped[str] = mapped_column(sa.String(255))
    file_name: Mapped[str] = mapped_column(sa.String(128))
    file_size: Mapped[int] = mapped_column(sa.BigInteger)
    hash_sha256: Mapped[str] = mapped_column(sa.String(64))
    signature: Mapped[str] = mapped_column(sa.Text)
    os: Mapped[str] = mapped_column(sa.String(32), server_default="linux", default="linux")
    arch: Mapped[str] = mapped_column(sa.String(16), server_default="amd64", default="amd64")
    release_notes: Mapped[str | None] = mapped_column(sa.Text)
    is_latest: Mapped[int] = mapped_column(TinyInt, server_default="0", default=0)
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    # The canonical JSON the signature covers, and the fingerprint of the key that signed it.
    manifest: Mapped[str | None] = mapped_column(sa.Text)
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))


class VersionLock(Base):
    """One row per component, locked while a package of it is added or removed: concurrent
    uploads and deletes then agree on which version is the latest (the set of versions to
    compare may be empty, and an empty set has no row to lock)."""

    __tablename__ = "version_locks"
    __table_args__ = (
        {"comment": "serialises changes to the versions of a component", **TABLE_OPTS},
    )

    component: Mapped[str] = mapped_column(sa.String(16), primary_key=True)


class UpdateRecord(Base):
    __tablename__ = "update_records"
    __table_args__ = (
        sa.Index("idx_batch_id", "batch_id"),
        sa.Index("idx_node_id", "node_id"),
        sa.Index("idx_status", "status"),
        {"comment": "update records", **TABLE_OPTS},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(sa.String(36))
    node_id: Mapped[int] = mapped_column(BigRef)
    component: Mapped[str] = mapped_column(enum("component", *COMPONENTS))
    from_version: Mapped[str | None] = mapped_column(exact_string(32))
    to_version: Mapped[str] = mapped_column(exact_string(32))
    status: Mapped[str] = mapped_column(
        enum("update_status", *UPDATE_STATUSES), server_default="pending", default="pending"
    )
    progress: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
