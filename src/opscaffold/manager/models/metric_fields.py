"""The numeric fields of a metric report, declared once.

The raw table, the latest-values table, the rollups (`<field>_avg`, `<field>_max`), ingest
validation, metric history and the API schema all derive their lists from METRIC_FIELDS.
A new field is one line here (and its column in a migration).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from opscaffold.manager.models.base import Percent

PERCENT_MAX = 999.99  # the largest value a DECIMAL(5,2) column holds
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


class Kind(StrEnum):
    PERCENT = "percent"  # DECIMAL(5,2): percentages and load averages, two decimals
    BIGINT = "bigint"  # byte counts and rates
    INT = "int"  # counts


COLUMN_TYPES: dict[Kind, sa.types.TypeEngine[Any]] = {
    Kind.PERCENT: Percent,
    Kind.BIGINT: sa.BigInteger(),
    Kind.INT: sa.Integer(),
}
MAXIMUM: dict[Kind, float] = {Kind.PERCENT: PERCENT_MAX, Kind.BIGINT: BIGINT_MAX, Kind.INT: INT_MAX}


@dataclass(frozen=True, slots=True)
class MetricField:
    name: str
    kind: Kind
    unit: str

    @property
    def maximum(self) -> float:
        return MAXIMUM[self.kind]

    @property
    def is_integer(self) -> bool:
        return self.kind is not Kind.PERCENT


METRIC_FIELDS = (
    MetricField("cpu_usage", Kind.PERCENT, "percent"),
    MetricField("memory_usage", Kind.PERCENT, "percent"),
    MetricField("memory_used", Kind.BIGINT, "bytes"),
    MetricField("disk_usage", Kind.PERCENT, "percent"),
    MetricField("disk_used", Kind.BIGINT, "bytes"),
    MetricField("network_rx", Kind.BIGINT, "bytes/s"),
    MetricField("network_tx", Kind.BIGINT, "bytes/s"),
    MetricField("load_avg_1", Kind.PERCENT, "load"),
    MetricField("load_avg_5", Kind.PERCENT, "load"),
    MetricField("load_avg_15", Kind.PERCENT, "load"),
    MetricField("process_count", Kind.INT, "processes"),
    MetricField("tcp_connections", Kind.INT, "connections"),
)
METRIC_COLUMNS = tuple(field.name for field in METRIC_FIELDS)
FIELDS_BY_NAME = {field.name: field for field in METRIC_FIELDS}


def metric_columns(suffixes: tuple[str, ...] = ("",)) -> list[sa.Column[Any]]:
    """One nullable column per field (and per suffix: `_avg`, `_max` for rollups)."""
    return [
        sa.Column(f"{field.name}{suffix}", COLUMN_TYPES[field.kind], nullable=True)
        for field in METRIC_FIELDS
        for suffix in suffixes
    ]
