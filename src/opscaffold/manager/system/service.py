"""The settings summary: read from the running Manager's keys and Settings, not the database."""

from __future__ import annotations

from opscaffold.manager.node.service import default_node_config
from opscaffold.manager.runtime import Runtime
from opscaffold.manager.system.schemas import (
    NodeTimingRead,
    RetentionRead,
    SigningKeyRead,
    SystemSettingsRead,
)


def summary(runtime: Runtime) -> SystemSettingsRead:
    settings = runtime.settings
    ring = runtime.keys
    return SystemSettingsRead(
        package_keys=[
            SigningKeyRead(
                fingerprint=key.fingerprint,
                source=key.source,
                own=key.fingerprint == ring.fingerprint,
            )
            for key in ring.trusted
        ],
        task_key_fingerprint=runtime.task_key.fingerprint,
        retention=RetentionRead(
            raw_metrics_days=settings.metrics.raw_retention_days,
            metric_rollups_days=settings.metrics.retention_days,
        ),
        node_defaults=default_node_config(settings),
        timing=NodeTimingRead(
            heartbeat_timeout_seconds=int(settings.node.heartbeat_timeout.total_seconds()),
            offline_check_seconds=int(settings.node.offline_check_interval.total_seconds()),
            alert_evaluation_seconds=int(settings.alert.evaluation_interval.total_seconds()),
        ),
    )
