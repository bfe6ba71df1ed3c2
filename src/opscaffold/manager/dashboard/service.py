"""The dashboard: counts and distributions straight from the tables, the trend from rollups."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.dashboard import repository
from opscaffold.manager.dashboard.schemas import AlertCounts, Dashboard, RecentAlert, Share
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.metric import service as metric_service
from opscaffold.manager.models import Alert
from opscaffold.manager.models.node import NODE_STATUSES

RECENT_ALERTS = 10


async def dashboard(session: AsyncSession) -> Dashboard:
    figures = await repository.node_figures(session)
    online = [f for f in figures if f.status == "online"]
    statuses = _count(figures, lambda f: f.status)
    total = sum(statuses.values())
    firing = await repository.firing_by_severity(session)
    return Dashboard(
        generated_at=utcnow(),
        total_nodes=total,
        online_nodes=statuses.get("online", 0),
        offline_nodes=total - statuses.get("online", 0),
        running_agents=sum(f.count for f in online if f.agent_running),
        active_alerts=sum(firing.values()),
        active_alerts_by_severity=AlertCounts(**firing),
        node_status_distribution=[
            Share(value=status, count=statuses.get(status, 0)) for status in NODE_STATUSES
        ],
        agent_version_distribution=_shares(
            _count((f for f in online if f.has_agent), _agent_version)
        ),
        daemon_version_distribution=_shares(_count(figures, lambda f: f.daemon_version)),
        resource_trend=await metric_service.fleet_trend(session, None, None, None),
        recent_alerts=[
            _recent(alert, rule_name, node_name)
            for alert, rule_name, node_name in await repository.recent_alerts(
                session, RECENT_ALERTS
            )
        ],
    )


def _count(
    figures: Iterable[repository.NodeFigures],
    key: Callable[[repository.NodeFigures], str | None],
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for figure in figures:
        value = key(figure) or repository.UNKNOWN
        counts[value] = counts.get(value, 0) + figure.count
    return counts


def _agent_version(figure: repository.NodeFigures) -> str | None:
    return figure.agent_version


def _shares(counts: dict[str, int]) -> list[Share]:
    """Most common first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Share(value=value, count=count) for value, count in ordered]


def _recent(alert: Alert, rule_name: str | None, node_name: str | None) -> RecentAlert:
    return RecentAlert.model_validate(
        {
            **{field: getattr(alert, field) for field in ALERT_FIELDS},
            "rule_name": rule_name,
            "node_name": node_name,
            "acknowledged": alert.acknowledged_at is not None,
        }
    )


ALERT_FIELDS = tuple(
    f for f in RecentAlert.model_fields if f not in ("rule_name", "node_name", "acknowledged")
)
