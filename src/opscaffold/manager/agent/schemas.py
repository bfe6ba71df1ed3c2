from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.models import Agent

AgentStatus = Literal["running", "stopped", "error", "unknown"]


class AgentRead(BaseModel):
    """The Agent of a node as its Daemon last reported it (spec §3.2.4).

    While the node is offline nobody can vouch for its Agent: `status` is then `unknown`, and
    `reported_status` keeps what the Daemon last said.
    """

    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    version: str | None
    status: AgentStatus
    reported_status: AgentStatus = Field(description="the status the Daemon last reported")
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

    @classmethod
    def seen(cls, agent: Agent, node_status: str) -> AgentRead:
        """The agent as an operator should see it, given its node's status."""
        read = cls.model_validate({**_columns(agent), "reported_status": agent.status})
        if node_status == "offline":
            read.status = "unknown"
        return read


def _columns(agent: Agent) -> dict[str, object]:
    return {c.key: getattr(agent, c.key) for c in Agent.__table__.columns}
