"""Background work of alerting."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.alert import evaluator
from opscaffold.manager.alert import service as alert_service
from opscaffold.manager.config import Settings
from opscaffold.manager.jobs.registry import job
from opscaffold.manager.logging import get_logger
from opscaffold.manager.notification import service as notification_service

log = get_logger("opscaffold.alert")


@job("alert.evaluate", every=lambda s: s.alert.evaluation_interval)
async def evaluate(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Evaluate every enabled rule on the nodes it targets: conditions go pending, fire once
    they have held for the rule's duration, and resolve when they clear. Notifications of
    what fired or resolved are queued in the same transaction (sent by notification.deliver)."""
    result = await evaluator.evaluate(session, now, settings.alert.metric_stale_after)
    notices = await alert_service.notices(session, result.transitions)
    await notification_service.enqueue(session, notices, now)
    if result.transitions:
        log.info(
            "alerts evaluated",
            rules=result.rules,
            holding=result.holding,
            fired=sum(1 for t in result.transitions if t.to == "firing"),
            resolved=sum(1 for t in result.transitions if t.to == "resolved"),
        )
    for t in result.transitions:  # one line each at debug: a fleet-wide outage is many
        log.debug(
            "alert " + t.to,
            alert_id=t.alert_id,
            rule_id=t.rule_id,
            node_id=t.node_id,
            metric=t.metric,
            value=t.value,
            reason=t.reason or None,
            silenced=t.silenced,
        )
