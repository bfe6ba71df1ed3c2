"""Tasks over REST: spec TaskCreateRequest (and our update, read and execution shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.kit.storable import Id
from opscaffold.manager.node.schemas import TargetType
from opscaffold.manager.task import schedule
from opscaffold.manager.task.states import ExecutionState
from opscaffold.protocol.task import MAX_TIMEOUT, TaskType

TaskStatus = Literal["enabled", "disabled"]
Trigger = Literal["manual", "schedule", "api"]
# A scheduled fire missed while no Manager ran: run once when one is back, or wait for the next.
Misfire = Literal["skip", "run_once"]
MAX_TARGET_VALUES = 10_000


def check_cron(value: str | None) -> str | None:
    """Five fields (minute hour day month weekday), as croniter reads them; none: no schedule."""
    if value is None or not value.strip():
        return None
    return schedule.normalize(value)


class _TaskFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("cron_expr", check_fields=False)
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value)


class TaskCreate(_TaskFields):
    name: str = Field(min_length=1, max_length=128)
    type: TaskType
    content: dict[str, Any] = Field(description="by type: script, file, service or custom")
    cron_expr: str | None = Field(
        None,
        max_length=64,
        description="5 fields (minute hour day-of-month month day-of-week), read in "
        "task.cron_timezone; the task then runs on that schedule while enabled",
    )
    misfire: Misfire = Field(
        "skip", description="a scheduled fire missed while no Manager ran: run once, or skip"
    )
    timeout: int = Field(300, ge=1, le=MAX_TIMEOUT, description="seconds")
    retry_count: int = Field(0, ge=0, le=10)
    retry_interval: int = Field(60, ge=0, le=86_400, description="seconds")
    target_type: TargetType = "node"
    target_value: list[str] = Field(default_factory=list, max_length=MAX_TARGET_VALUES)
    description: str | None = Field(None, max_length=255)
    status: TaskStatus = "enabled"


class TaskUpdate(_TaskFields):
    """Fields to change; `type` and `content` change together (content is checked by type)."""

    name: str | None = Field(None, min_length=1, max_length=128)
    type: TaskType | None = None
    content: dict[str, Any] | None = None
    cron_expr: str | None = Field(None, max_length=64, description="null or empty: none")
    misfire: Misfire | None = None
    timeout: int | None = Field(None, ge=1, le=MAX_TIMEOUT)
    retry_count: int | None = Field(None, ge=0, le=10)
    retry_interval: int | None = Field(None, ge=0, le=86_400)
    target_type: TargetType | None = None
    target_value: list[str] | None = Field(None, max_length=MAX_TARGET_VALUES)
    description: str | None = Field(None, max_length=255)
    status: TaskStatus | None = None


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    type: TaskType
    content: dict[str, Any] = Field(description="secret environment values are masked")
    cron_expr: str | None
    misfire: Misfire
    next_run_at: datetime | None = Field(
        description="when the schedule fires next; null without cron_expr or while disabled"
    )
    timeout: int
    retry_count: int
    retry_interval: int
    target_type: TargetType
    target_value: list[str] | None
    status: TaskStatus
    description: str | None
    created_by: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at", "next_run_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class ScheduleRuns(BaseModel):
    """A cron expression's next times, as the scheduler would fire it."""

    cron_expr: str
    next_runs: list[datetime] = Field(description="UTC, earliest first")

    @field_serializer("next_runs")
    def _times(self, values: list[datetime]) -> list[str | None]:
        return [rfc3339(v) for v in values]


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_nodes: list[Id] | None = Field(
        None, max_length=MAX_TARGET_VALUES, description="these nodes instead of the task's target"
    )


class ExecuteResult(BaseModel):
    execution_id: str
    total_nodes: int


class ExecutionRow(BaseModel):
    """One node's execution; `output` only where asked for (it may be a megabyte)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    node_name: str | None = None
    status: ExecutionState
    exit_code: int | None
    error: str | None
    output_truncated: bool
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None

    @field_serializer("started_at", "finished_at", "deadline_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class StateCounts(BaseModel):
    pending: int = 0
    running: int = 0
    success: int = 0
    failed: int = 0
    timeout: int = 0
    cancelled: int = 0


class ExecutionSummary(BaseModel):
    execution_id: str
    task_id: int
    triggered_by: Trigger
    created_by: int | None
    created_at: datetime
    total: int
    status: Literal["running", "finished"] = Field(description="finished: every node is final")
    counts: StateCounts

    @field_serializer("created_at")
    def _time(self, value: datetime) -> str | None:
        return rfc3339(value)


class ExecutionDetail(ExecutionSummary):
    nodes: list[ExecutionRow]


class ExecutionOutput(BaseModel):
    execution_id: str
    node_id: int
    status: ExecutionState
    exit_code: int | None
    output: str
    truncated: bool = Field(description="the Agent kept only the first part of the output")
    error: str | None


class CancelResult(BaseModel):
    execution_id: str
    cancelled: int = Field(description="executions cancelled before they started")
    signalled: int = Field(description="running executions whose nodes were told to stop")
