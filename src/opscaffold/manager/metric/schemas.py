from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from opscaffold.manager.kit.clock import rfc3339


class NodeMetricRead(BaseModel):
    """One report of a node (or, over a long range, the average of a time bucket)."""

    model_config = ConfigDict(from_attributes=True)

    node_id: int
    # One per field of the catalogue (metric_fields); a test keeps the two the same.
    cpu_usage: float | None = Field(description="percent")
    memory_usage: float | None = Field(description="percent")
    memory_used: int | None = Field(description="bytes")
    disk_usage: float | None = Field(description="percent")
    disk_used: int | None = Field(description="bytes")
    network_rx: int | None = Field(description="bytes/s")
    network_tx: int | None = Field(description="bytes/s")
    load_avg_1: float | None = Field(description="load")
    load_avg_5: float | None = Field(description="load")
    load_avg_15: float | None = Field(description="load")
    process_count: int | None = Field(description="processes")
    tcp_connections: int | None = Field(description="connections")
    timestamp: datetime = Field(description="collected at; for a bucket, the bucket's start")

    @field_serializer("timestamp")
    def _time(self, value: datetime) -> str | None:
        return rfc3339(value)


class FleetTrendPoint(BaseModel):
    """One bucket of the fleet (or a group subtree): averages over every report in it, and
    the highest single report."""

    timestamp: datetime = Field(description="the bucket's start")
    nodes: int = Field(description="nodes that reported in the bucket")
    samples: int = Field(description="reports in the bucket")
    cpu_usage_avg: float | None = Field(description="percent")
    cpu_usage_max: float | None = Field(description="percent")
    memory_usage_avg: float | None = Field(description="percent")
    memory_usage_max: float | None = Field(description="percent")
    disk_usage_avg: float | None = Field(description="percent")
    disk_usage_max: float | None = Field(description="percent")

    @field_serializer("timestamp")
    def _time(self, value: datetime) -> str | None:
        return rfc3339(value)
