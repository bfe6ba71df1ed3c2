from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from opscaffold.manager.kit.clock import rfc3339


class AgentRead(BaseModel):
    """The Agent of a node as its Daemon last reported it (spec §3.2.4)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    version: str | None
    status: Literal["running", "stopped", "error", "unknown"]
    pid: int | None
    cpu_usage: float | None = Field(description="percent")
    memory_usage: int | None = Field(description="bytes")
    start_time: datetime | None
    restart_count: int
    last_error: str | None
    updated_at: datetime

    @field_serializer("start_time", "updated_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)
