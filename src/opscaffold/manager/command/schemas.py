from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from opscaffold.manager.command.states import CommandState
from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.kit.storable import Id


class CommandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_ids: list[Id] = Field(min_length=1, max_length=1000)
    type: Literal["ping", "restart", "config", "update"]
    payload: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)


class CommandRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    node_id: int
    type: str
    payload: dict[str, Any]
    state: CommandState = Field(
        description="pending → sent (delivered, outcome awaited) → done | failed; "
        "done at once over channels that cannot report back; expired past expires_at"
    )
    error: str | None = Field(description="why the daemon could not carry it out (failed)")
    attempts: int
    delivered_via: str | None
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    done_at: datetime | None

    @field_serializer("created_at", "expires_at", "sent_at", "done_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class CommandsQueued(BaseModel):
    ids: list[str]
