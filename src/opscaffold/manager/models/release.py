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
        sa.Index("idx_update_records_batch_wave", "batch_id", "wave"),
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
    # The wave of its rollout the record belongs to (1 first), and the command that carried
    # the order to the node once the wave started.
    wave: Mapped[int] = mapped_column(sa.Integer, server_default="1", default=1)
    command_id: Mapped[str | None] = mapped_column(sa.String(36))
    # When the node last reported on this record: a record under way and silent for too long
    # is stuck.
    reported_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


ROLLOUT_STRATEGIES = ("all", "rolling", "canary")
ROLLOUT_STATUSES = ("running", "paused", "cancelled", "completed", "failed")
# A rollout in one of these holds the nodes of its unfinished records.
ACTIVE_ROLLOUT_STATUSES = ("running", "paused")


class Rollout(Base):
    """One deploy of a version to a set of nodes, in waves; its records share its batch_id.
    Every change of it is a guarded UPDATE, so replicas and restarts agree on where it is."""

    __tablename__ = "rollouts"
    __table_args__ = (
        sa.Index("idx_rollouts_status", "status"),
        sa.Index("idx_rollouts_created_at", "created_at"),
        {"comment": "rollouts of a version to nodes, wave by wave", **TABLE_OPTS},
    )

    batch_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    component: Mapped[str] = mapped_column(enum("component", *COMPONENTS))
    version_id: Mapped[int] = mapped_column(BigRef)
    version: Mapped[str] = mapped_column(sa.String(32))
    strategy: Mapped[str] = mapped_column(enum("rollout_strategy", *ROLLOUT_STRATEGIES))
    batch_size: Mapped[int] = mapped_column(sa.Integer)
    max_failures: Mapped[int] = mapped_column(sa.Integer)
    canary_size: Mapped[int] = mapped_column(sa.Integer)
    bake_seconds: Mapped[int] = mapped_column(sa.Integer)
    total_waves: Mapped[int] = mapped_column(sa.Integer)
    current_wave: Mapped[int] = mapped_column(sa.Integer)
    # When the current wave was first seen complete (the canary's bake starts there).
    wave_done_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # Failures an operator accepted by resuming, and the wave they resumed in.
    accepted_failures: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    resumed_wave: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    status: Mapped[str] = mapped_column(
        enum("rollout_status", *ROLLOUT_STATUSES), server_default="running", default="running"
    )
    reason: Mapped[str | None] = mapped_column(sa.String(512))
    # How long each wave's orders wait for offline nodes, and when the current wave's do.
    wait_seconds: Mapped[int] = mapped_column(sa.Integer, server_default="3600", default=3600)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[int] = mapped_column(BigRef)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=now_default(), default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    # The rollout this one takes back to the versions its nodes ran before (rollback orders).
    rollback_of: Mapped[str | None] = mapped_column(sa.String(36))
