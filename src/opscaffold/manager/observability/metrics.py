"""Prometheus metrics of spec §9.1, in a registry of their own per Manager."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
            registry=self.registry,
        )
        self.nodes = Gauge(
            "manager_nodes_total",
            "Total number of nodes",
            ["status"],
            registry=self.registry,
        )
        self.grpc_requests = Counter(
            "manager_grpc_requests_total",
            "Total number of gRPC requests",
            ["method", "status"],
            registry=self.registry,
        )
