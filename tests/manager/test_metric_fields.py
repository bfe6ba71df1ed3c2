"""Every list of metric fields agrees with the one catalogue."""

from __future__ import annotations

from typing import get_args

from opscaffold.manager.metric.schemas import NodeMetricRead
from opscaffold.manager.models import NodeMetric, NodeMetricLatest, node_metrics_5m
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS, METRIC_FIELDS
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb


def test_tables_have_a_column_per_field() -> None:
    for table in (NodeMetric.__table__, NodeMetricLatest.__table__):
        assert [c.name for c in table.c if c.name in METRIC_COLUMNS] == list(METRIC_COLUMNS)
        assert set(table.c.keys()) - set(METRIC_COLUMNS) == {"node_id", "timestamp"}
    rollup = {c.name for c in node_metrics_5m.c}
    assert {f"{name}_{kind}" for name in METRIC_COLUMNS for kind in ("avg", "max")} <= rollup


def test_the_api_schema_has_a_field_per_metric_with_its_unit() -> None:
    fields = NodeMetricRead.model_fields
    assert [n for n in fields if n not in ("node_id", "timestamp")] == list(METRIC_COLUMNS)
    for metric in METRIC_FIELDS:
        schema = fields[metric.name]
        assert (int if metric.is_integer else float) in get_args(schema.annotation), metric.name
        assert schema.description == metric.unit, metric.name


def test_the_wire_message_carries_every_field() -> None:
    assert set(METRIC_COLUMNS) <= set(pb.NodeMetrics.DESCRIPTOR.fields_by_name)
