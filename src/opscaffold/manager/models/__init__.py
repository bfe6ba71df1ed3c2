"""Every table, imported here so that Alembic and the tests see the whole metadata."""

from opscaffold.manager.models.alert import Alert, AlertRule
from opscaffold.manager.models.audit import AuditLog
from opscaffold.manager.models.base import Base
from opscaffold.manager.models.job import JobClaim
from opscaffold.manager.models.node import Agent, Node, NodeGroup, NodeMetric
from opscaffold.manager.models.release import UpdateRecord, Version
from opscaffold.manager.models.task import Task, TaskExecution
from opscaffold.manager.models.user import RefreshToken, TokenFamily, User

__all__ = [
    "Agent",
    "Alert",
    "AlertRule",
    "AuditLog",
    "Base",
    "JobClaim",
    "Node",
    "NodeGroup",
    "NodeMetric",
    "RefreshToken",
    "Task",
    "TaskExecution",
    "TokenFamily",
    "UpdateRecord",
    "User",
    "Version",
]
