"""What a daemon reports, made into what the flusher writes: each report is validated on its
own (a bad one is refused, naming the field) before it is queued."""

from __future__ import annotations

from datetime import timedelta

from opscaffold.manager.config import Settings
from opscaffold.manager.ingest.flusher import Report
from opscaffold.manager.ingest.validation import agent_row, metric_row
from opscaffold.manager.kit.clock import utcnow
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb


def heartbeat_report(node_id: int, request: pb.HeartbeatRequest) -> Report:
    """The node was heard from, with its agent's state if the daemon sent one."""
    agent = None
    if request.HasField("agent_status"):
        agent = agent_row(node_id, request.agent_status, utcnow())
    return Report(node_id, heartbeat=True, agent=agent)


def metric_report(node_id: int, request: pb.ReportMetricsRequest, settings: Settings) -> Report:
    """One metrics sample, no older than the raw rows are kept."""
    oldest = timedelta(days=settings.metrics.raw_retention_days)
    return Report(node_id, metric=metric_row(node_id, request.metrics, utcnow(), oldest))
