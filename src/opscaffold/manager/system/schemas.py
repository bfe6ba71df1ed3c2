"""What `GET /system/settings` shows of the Manager's configuration: nothing secret."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SigningKeyRead(BaseModel):
    fingerprint: str = Field(description="SHA-256 of the public key's DER SubjectPublicKeyInfo")
    source: str = Field(description="'manager signing key', or the file it was configured from")
    own: bool = Field(description="the Manager signs uploads with it (the others sign offline)")


class RetentionRead(BaseModel):
    raw_metrics_days: int = Field(description="metrics.raw_retention_days: raw reports")
    metric_rollups_days: int = Field(description="metrics.retention_days: 5-minute rollups")


class NodeTimingRead(BaseModel):
    heartbeat_timeout_seconds: int = Field(description="silent this long: the node is offline")
    offline_check_seconds: int
    alert_evaluation_seconds: int


class SystemSettingsRead(BaseModel):
    package_keys: list[SigningKeyRead] = Field(
        description="the keys whose package signatures the Manager accepts, its own first"
    )
    task_key_fingerprint: str = Field(
        description="the Ed25519 key task envelopes are signed with; daemons pin it"
    )
    retention: RetentionRead
    node_defaults: dict[str, str] = Field(
        description="the default level of every node's configuration (from node.* settings)"
    )
    timing: NodeTimingRead
