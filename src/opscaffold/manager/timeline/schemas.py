"""A node's timeline: what happened to it, from several domains, in one time order."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_serializer

from opscaffold.manager.kit.clock import rfc3339


class _Event(BaseModel):
    at: datetime = Field(description="when it began")

    @field_serializer("at")
    def _at(self, value: datetime) -> str | None:
        return rfc3339(value)


class StatusChange(_Event):
    kind: Literal["status"] = "status"
    event: str = Field(description="registered, online, offline, …")
    from_status: str | None
    to_status: str | None


class AlertEvent(_Event):
    """An alert, placed at its firing; `resolved_at` ends it."""

    kind: Literal["alert"] = "alert"
    alert_id: int
    rule_name: str | None = Field(description="null once the rule is deleted")
    metric: str
    severity: str
    status: str
    current_value: float
    threshold: float
    resolved_at: datetime | None

    @field_serializer("resolved_at")
    def _resolved(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class UpdateEvent(_Event):
    """An update of the daemon or agent, placed at its record's creation."""

    kind: Literal["update"] = "update"
    record_id: int
    batch_id: str
    component: str
    from_version: str | None
    to_version: str
    status: str
    finished_at: datetime | None

    @field_serializer("finished_at")
    def _finished(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class TaskEvent(_Event):
    """A task's run on this node, placed at its creation."""

    kind: Literal["task"] = "task"
    execution_id: str
    task_id: int
    task_name: str | None = Field(description="null once the task is deleted")
    status: str
    exit_code: int | None
    finished_at: datetime | None

    @field_serializer("finished_at")
    def _finished(self, value: datetime | None) -> str | None:
        return rfc3339(value)


TimelineEvent = Annotated[
    StatusChange | AlertEvent | UpdateEvent | TaskEvent, Field(discriminator="kind")
]


class Timeline(BaseModel):
    start: datetime
    end: datetime
    events: list[TimelineEvent] = Field(description="oldest first")
    truncated: bool = Field(
        description="more events happened in the range than `limit`: the newest are kept"
    )

    @field_serializer("start", "end")
    def _bounds(self, value: datetime) -> str | None:
        return rfc3339(value)
