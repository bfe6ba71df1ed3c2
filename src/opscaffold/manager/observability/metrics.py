"""Prometheus metrics of spec §9.1, in a registry of their own per Manager."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric, UnknownMetricFamily
from prometheus_client.registry import Collector

# Go's prometheus.DefBuckets, which spec §9.1 names (prometheus_client's default has three more).
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class NodeCounts(Collector):
    """manager_nodes_total{status}: the `nodes` table's counts, as of the last scrape.

    Spec §9.1 names this gauge `..._total`, a suffix Prometheus reserves for counters
    (`promtool check metrics` refuses a gauge so named). It is exposed untyped instead: the
    name and labels stay the spec's, linters accept it and PromQL queries it like a gauge.
    """

    name = "manager_nodes_total"

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def set(self, counts: Mapping[str, int]) -> None:
        self._counts = dict(counts)

    def collect(self) -> Iterable[Metric]:
        family = UnknownMetricFamily(self.name, "Total number of nodes", labels=["status"])
        for status, count in sorted(self._counts.items()):
            family.add_metric([status], count)
        yield family


class ManagerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "manager_http_requests_total",
            "Total number of HTTP requests",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "manager_http_request_duration_seconds",
            "HTTP request duration in seconds",
            ["method", "path"],
            buckets=DEFAULT_BUCKETS,
            registry=self.registry,
        )
        self.nodes = NodeCounts()
        self.registry.register(self.nodes)
        self.ingest_queue_depth = Gauge(
            "manager_ingest_queue_depth",
            "Reports waiting for the write-behind flusher",
            registry=self.registry,
        )
        self.ingest_rows = Counter(
            "manager_ingest_rows_flushed",
            "Rows written by the write-behind flusher",
            ["kind"],
            registry=self.registry,
        )
        self.ingest_flush_seconds = Histogram(
            "manager_ingest_flush_seconds",
            "Time to write and commit one ingest batch",
            buckets=DEFAULT_BUCKETS,
            registry=self.registry,
        )
        self.grpc_streams = Gauge(
            "manager_grpc_streams",
            "Daemon streams held open by this Manager",
            ["kind"],
            registry=self.registry,
        )
        self.grpc_refused = Counter(
            "manager_grpc_refused",
            "gRPC calls refused at the edge",
            ["reason"],
            registry=self.registry,
        )
        self.grpc_requests = Counter(
            "manager_grpc_requests_total",
            "Total number of gRPC requests",
            ["method", "status"],
            registry=self.registry,
        )
