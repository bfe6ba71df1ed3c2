"""The dashboard of spec §5.2.1: the fleet at a glance, in one response."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_serializer

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.metric.schemas import FleetTrendPoint


class Share(BaseModel):
    """One slice of a distribution: a value and how many have it."""

    value: str = Field(description="a status or a version ('unknown' when none is known)")
    count: int


class AlertCounts(BaseModel):
    critical: int = 0
    warning: int = 0
    info: int = 0


class RecentAlert(BaseModel):
    id: int
    rule_id: int
    rule_name: str | None = Field(description="null once the rule is deleted")
    node_id: int
    node_name: str | None = Field(description="null once the node is deleted")
    metric: str
    severity: str
    status: str
    current_value: float
    threshold: float
    fired_at: datetime
    resolved_at: datetime | None
    acknowledged: bool

    @field_serializer("fired_at", "resolved_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class Dashboard(BaseModel):
    generated_at: datetime = Field(description="when these figures were computed")
    total_nodes: int
    online_nodes: int
    offline_nodes: int = Field(description="nodes not online (offline or never heard from)")
    running_agents: int = Field(description="agents running on online nodes")
    active_alerts: int = Field(description="alerts firing now")
    active_alerts_by_severity: AlertCounts
    node_status_distribution: list[Share]
    agent_version_distribution: list[Share] = Field(description="agents of online nodes")
    daemon_version_distribution: list[Share] = Field(description="daemons of every node")
    resource_trend: list[FleetTrendPoint] = Field(description="the last 24 h, from rollups")
    recent_alerts: list[RecentAlert] = Field(description="newest first")

    @field_serializer("generated_at")
    def _time(self, value: datetime) -> str | None:
        return rfc3339(value)
