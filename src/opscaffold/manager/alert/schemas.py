"""Alert rules, alerts and silences over REST."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.kit.storable import StorableTime
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS
from opscaffold.manager.node.schemas import TargetType

Operator = Literal["gt", "gte", "lt", "lte", "eq", "ne"]
Severity = Literal["critical", "warning", "info"]

AlertStatus = Literal["firing", "resolved"]
SilenceTarget = Literal["rule", "node", "group", "tag"]

# Conditions about a node's state rather than a number: they hold or not, with no operator
# or threshold.
BOOLEAN_METRICS = ("node_offline", "agent_not_running")
METRICS = (*METRIC_COLUMNS, *BOOLEAN_METRICS)


def _known_metric(value: str) -> str:
    if value not in METRICS:
        raise ValueError(f"unknown metric '{value[:64]}'; one of: {', '.join(METRICS)}")
    return value


Metric = Annotated[
    str,
    Field(max_length=64),
    AfterValidator(_known_metric),
    WithJsonSchema({"type": "string", "enum": list(METRICS)}),
]
THRESHOLD_LIMIT = 10**18  # DECIMAL(20,2) holds less than this
MAX_TARGET_VALUES = 1000
MAX_CHANNELS = 20
MAX_DURATION = 7 * 24 * 3600

Channel = Annotated[str, Field(min_length=1, max_length=64)] | Annotated[int, Field(ge=1)]
Threshold = Annotated[float, Field(gt=-THRESHOLD_LIMIT, lt=THRESHOLD_LIMIT, allow_inf_nan=False)]
Seconds = Annotated[int, Field(ge=0, le=MAX_DURATION)]
TargetValue = Annotated[str, Field(min_length=1, max_length=64)]


class AlertRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    metric: Metric = Field(description="a NodeMetrics field, or node_offline / agent_not_running")
    operator: Operator | None = Field(None, description="required for a NodeMetrics field")
    threshold: Threshold | None = Field(None, description="required for a NodeMetrics field")
    duration: Seconds = Field(60, description="seconds the condition must hold before firing")
    keep_firing_for: Seconds = Field(
        0, description="seconds a firing alert stays firing after its condition clears"
    )
    severity: Severity = "warning"
    target_type: TargetType = "all"
    target_value: list[TargetValue] = Field(
        default_factory=list,
        max_length=MAX_TARGET_VALUES,
        description="group ids (with their sub-groups), tags or node ids; none for all",
    )
    notification_channels: list[Channel] = Field(
        default_factory=list, max_length=MAX_CHANNELS, description="channel names or ids"
    )
    enabled: bool = True


class AlertRuleUpdate(BaseModel):
    """The fields to change; the rule as changed is checked as a whole."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=128)
    metric: Metric | None = None
    operator: Operator | None = None
    threshold: Threshold | None = None
    duration: Seconds | None = None
    keep_firing_for: Seconds | None = None
    severity: Severity | None = None
    target_type: TargetType | None = None
    target_value: list[TargetValue] | None = Field(None, max_length=MAX_TARGET_VALUES)
    notification_channels: list[Channel] | None = Field(None, max_length=MAX_CHANNELS)
    enabled: bool | None = None


class AlertRuleRead(BaseModel):
    id: int
    name: str
    metric: str
    operator: Operator | None
    threshold: float | None
    duration: int
    keep_firing_for: int
    severity: Severity
    target_type: TargetType
    target_value: list[str]
    notification_channels: list[int] = Field(description="ids of the channels notified")
    enabled: bool
    created_by: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str | None:
        return rfc3339(value)


class AlertRead(BaseModel):
    id: int
    rule_id: int
    rule_name: str | None = Field(description="none once the rule is deleted")
    node_id: int
    hostname: str | None = Field(description="none once the node is deleted")
    metric: str
    current_value: float = Field(description="the value when the alert fired")
    threshold: float
    severity: Severity
    status: AlertStatus
    fired_at: datetime
    resolved_at: datetime | None
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    silenced: bool = Field(description="an active silence covers it: it notifies nobody")
    silence_ids: list[int] = Field(description="the active silences that cover it")

    @field_serializer("fired_at", "resolved_at", "acknowledged_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class AlertSilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_type: SilenceTarget
    target_value: TargetValue = Field(description="a rule, node or group id, or a tag")
    reason: str = Field(min_length=1, max_length=255)
    starts_at: StorableTime | None = Field(None, description="default: now")
    ends_at: StorableTime


class AlertSilenceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, min_length=1, max_length=255)
    starts_at: StorableTime | None = None
    ends_at: StorableTime | None = None


class AlertSilenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    target_type: SilenceTarget
    target_value: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    active: bool = False
    created_by: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("starts_at", "ends_at", "created_at", "updated_at")
    def _times(self, value: datetime) -> str | None:
        return rfc3339(value)
