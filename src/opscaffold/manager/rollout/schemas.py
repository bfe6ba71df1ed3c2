"""Rollouts over REST: the deploy request (spec DeployRequest and our additions), its plan,
and what a rollout looks like while it runs (spec DeployStatusResponse)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.kit.storable import Id

Strategy = Literal["all", "rolling", "canary"]
RolloutStatus = Literal["running", "paused", "cancelled", "completed", "failed"]
MAX_TARGET_VALUES = 10_000
MAX_EXPIRY = 7 * 24 * 3600  # the command outbox keeps an order at most this long


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    component: Literal["daemon", "agent"]
    version_id: Id
    target_type: Literal["node", "group", "tag", "label", "all"]
    target_value: list[str] = Field(default_factory=list, max_length=MAX_TARGET_VALUES)
    strategy: Strategy = "all"
    batch_size: int = Field(10, ge=1, le=100_000, description="nodes per wave (rolling, canary)")
    max_failures: int = Field(
        0, ge=0, description="failed nodes tolerated before the rollout pauses"
    )
    canary_size: int = Field(1, ge=1, le=100_000, description="nodes in the canary wave")
    bake_seconds: int = Field(
        300, ge=0, le=86_400, description="how long the canary nodes must stay healthy"
    )
    expires_in_seconds: int = Field(
        3600,
        ge=1,
        le=MAX_EXPIRY,
        description="how long each wave's orders wait for offline targets",
    )
    dry_run: bool = Field(False, description="return the plan and start nothing")

    @model_validator(mode="after")
    def _values_where_needed(self) -> DeployRequest:
        if self.target_type != "all" and not any(v.strip() for v in self.target_value):
            raise ValueError(f"target_value: a {self.target_type} target needs at least one value")
        return self


class PlannedNode(BaseModel):
    id: int
    name: str
    offline: bool = Field(description="not online now: the order waits for it until expiry")


class IneligibleNode(BaseModel):
    id: int
    name: str
    reason: str


class DeployPlan(BaseModel):
    batch_id: str | None = Field(description="the rollout started; none for a dry run")
    dry_run: bool
    total_nodes: int = Field(description="nodes that will be updated")
    batches: list[list[PlannedNode]] = Field(description="the waves, in order")
    ineligible: list[IneligibleNode]


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_seconds: int = Field(
        3600, ge=1, le=MAX_EXPIRY, description="how long offline nodes are waited for"
    )


class RollbackResult(BaseModel):
    batch_ids: list[str] = Field(description="one rollout per version the nodes go back to")
    total_nodes: int
    ineligible: list[IneligibleNode]


class StateCounts(BaseModel):
    pending: int = 0
    downloading: int = 0
    installing: int = 0
    verifying: int = 0
    success: int = 0
    failed: int = 0
    rollback: int = 0


class RolloutRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    batch_id: str
    component: str
    version_id: int
    version: str
    strategy: Strategy
    batch_size: int
    max_failures: int
    canary_size: int
    bake_seconds: int
    total_waves: int
    current_wave: int
    status: RolloutStatus
    reason: str | None
    wait_seconds: int = Field(description="how long each wave's orders wait for offline nodes")
    expires_at: datetime = Field(description="when the current wave's orders expire")
    created_by: int
    created_at: datetime
    finished_at: datetime | None
    rollback_of: str | None = Field(description="the rollout this one takes back")
    counts: StateCounts = Field(default_factory=StateCounts)

    @field_serializer("expires_at", "created_at", "finished_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class UpdateRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    node_id: int
    node_name: str | None
    wave: int
    from_version: str | None
    to_version: str
    status: str
    progress: int
    error_message: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @field_serializer("started_at", "finished_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class DeployStatus(BaseModel):
    batch_id: str
    status: RolloutStatus
    reason: str | None
    current_wave: int
    total_waves: int
    total: int
    success: int
    failed: int = Field(description="failed or rolled back")
    pending: int = Field(description="not final yet")
    records_total: int = Field(description="records of the asked state (all when none asked)")
    records: list[UpdateRecordRead] = Field(description="all of them, or the asked page")
