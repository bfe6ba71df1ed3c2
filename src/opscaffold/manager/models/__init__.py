"""Every table, imported here so that Alembic and the tests see the whole metadata."""

from opscaffold.manager.models.alert import (
    Alert,
    AlertCondition,
    AlertEvaluator,
    AlertRule,
    AlertSilence,
)
from opscaffold.manager.models.audit import AuditLog
from opscaffold.manager.models.base import Base
from opscaffold.manager.models.job import JobClaim
from opscaffold.manager.models.metric import (
    fleet_metrics_5m,
    metric_rollup_pending,
    node_metrics_5m,
)
from opscaffold.manager.models.node import (
    Agent,
    EnrollmentToken,
    Node,
    NodeCommand,
    NodeConfig,
    NodeCredential,
    NodeEvent,
    NodeGroup,
    NodeLabel,
    NodeMetric,
    NodeMetricLatest,
    NodeTag,
)
from opscaffold.manager.models.notification import NotificationChannel, NotificationDelivery
from opscaffold.manager.models.release import Rollout, UpdateRecord, Version, VersionLock
from opscaffold.manager.models.task import Task, TaskExecution, TaskOutputChunk
from opscaffold.manager.models.user import RefreshToken, TokenFamily, User

__all__ = [
    "Agent",
    "Alert",
    "AlertCondition",
    "AlertEvaluator",
    "AlertRule",
    "AlertSilence",
    "AuditLog",
    "Base",
    "EnrollmentToken",
    "JobClaim",
    "Node",
    "NodeCommand",
    "NodeConfig",
    "NodeCredential",
    "NodeEvent",
    "NodeGroup",
    "NodeLabel",
    "NodeMetric",
    "NodeMetricLatest",
    "NodeTag",
    "NotificationChannel",
    "NotificationDelivery",
    "RefreshToken",
    "Rollout",
    "Task",
    "TaskExecution",
    "TaskOutputChunk",
    "TokenFamily",
    "UpdateRecord",
    "User",
    "Version",
    "VersionLock",
    "fleet_metrics_5m",
    "metric_rollup_pending",
    "node_metrics_5m",
]
