"""Each report is checked on its own before it is queued: a bad one is refused, naming the
field, and never fails the batch it would have joined."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.models.metric_fields import BIGINT_MAX, INT_MAX, METRIC_FIELDS, PERCENT_MAX

CLOCK_SKEW = timedelta(seconds=120)
AGENT_STATUSES = frozenset({"running", "stopped", "error", "unknown"})


@dataclass(frozen=True, slots=True)
class MetricRow:
    node_id: int
    timestamp: datetime  # naive UTC
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentRow:
    node_id: int
    values: dict[str, Any]


def _decimal(name: str, value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise InvalidArgument(f"{name} is not a finite number")
    if not 0 <= value <= PERCENT_MAX:
        raise InvalidArgument(f"{name}={value} is outside 0..{PERCENT_MAX}")
    return round(value, 2)


def _integer(name: str, value: int, maximum: int) -> int:
    if not 0 <= value <= maximum:
        raise InvalidArgument(f"{name}={value} is outside 0..{maximum}")
    return value


def report_time(seconds: int, now: datetime, oldest: timedelta) -> datetime:
    """A report's own timestamp (Unix seconds), inside the window the store keeps."""
    try:
        at = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidArgument(f"timestamp={seconds} is not a valid Unix time") from exc
    if at > now + CLOCK_SKEW:
        raise InvalidArgument(f"timestamp={seconds} is ahead of the Manager's clock")
    if at < now - oldest:
        raise InvalidArgument(f"timestamp={seconds} is older than the raw metric retention")
    return at


def metric_row(node_id: int, metrics: Any, now: datetime, oldest: timedelta) -> MetricRow:
    """Validate a NodeMetrics message into a row. A zero timestamp means "now"."""
    values: dict[str, Any] = {}
    for field in METRIC_FIELDS:
        reported = getattr(metrics, field.name)
        if field.is_integer:
            values[field.name] = _integer(field.name, int(reported), int(field.maximum))
        else:
            values[field.name] = _decimal(field.name, float(reported))
    at = now if metrics.timestamp == 0 else report_time(metrics.timestamp, now, oldest)
    return MetricRow(node_id, at, values)


def agent_row(node_id: int, status: Any, now: datetime) -> AgentRow:
    if status.status not in AGENT_STATUSES:
        raise InvalidArgument(
            f"agent_status.status '{status.status[:32]}' is not one of {sorted(AGENT_STATUSES)}"
        )
    start_time = None
    if status.start_time:
        start_time = report_time(status.start_time, now, timedelta(days=3650))
    return AgentRow(
        node_id,
        {
            "version": status.version[:32] or None,
            "status": status.status,
            "pid": _integer("agent_status.pid", status.pid, INT_MAX) or None,
            "cpu_usage": _decimal("agent_status.cpu_usage", status.cpu_usage),
            "memory_usage": _integer("agent_status.memory_usage", status.memory_usage, BIGINT_MAX),
            "start_time": start_time,
            "restart_count": _integer("agent_status.restart_count", status.restart_count, INT_MAX),
            "last_error": status.last_error[:4000] or None,
        },
    )
