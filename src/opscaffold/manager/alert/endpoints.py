"""Alerts over REST (spec §4.4 `/alerts`): alerts, their acknowledgement, rules and silences.

Everyone reads; admins and operators acknowledge and silence; admins manage rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from opscaffold.manager.alert import service
from opscaffold.manager.alert.repository import AlertFilter
from opscaffold.manager.alert.schemas import (
    AlertRead,
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    AlertSilenceCreate,
    AlertSilenceRead,
    AlertSilenceUpdate,
    AlertStatus,
    Severity,
)
from opscaffold.manager.deps import AuditDep, CurrentUser, SessionDep
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.envelope import EmptyData, Envelope, Page
from opscaffold.manager.kit.pagination import PageDep
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import BIGINT_MAX, IdPath, StorableTime

router = APIRouter(prefix=f"{API_PREFIX}/alerts", tags=["alerts"])
QueryId = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]


# -- rules (declared before /{id}, which they would otherwise match) -------------------------
@router.get("/rules", response_model=Envelope[Page[AlertRuleRead]])
async def list_alert_rules(session: SessionDep, page: PageDep) -> Envelope[Page[AlertRuleRead]]:
    total, items = await service.list_rules(session, offset=page.offset, limit=page.page_size)
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.post("/rules", response_model=Envelope[AlertRuleRead], status_code=201)
async def create_alert_rule(
    body: AlertRuleCreate, session: SessionDep, principal: CurrentUser, audit: AuditDep
) -> Envelope[AlertRuleRead]:
    audit.detail = body.model_dump(exclude={"target_value"}) | {
        "target_value": body.target_value[:50]
    }
    rule = await service.create_rule(session, body, principal.user_id)
    audit.resource_id = str(rule.id)
    return ok(service.present_rule(rule))


@router.get("/rules/{id}", response_model=Envelope[AlertRuleRead])
async def get_alert_rule(id: IdPath, session: SessionDep) -> Envelope[AlertRuleRead]:
    return ok(service.present_rule(await service.get_rule(session, id)))


@router.put("/rules/{id}", response_model=Envelope[AlertRuleRead])
async def update_alert_rule(
    id: IdPath, body: AlertRuleUpdate, session: SessionDep, audit: AuditDep
) -> Envelope[AlertRuleRead]:
    """Change the given fields of a rule."""
    audit.detail = {"changed": sorted(body.model_fields_set)}
    return ok(service.present_rule(await service.update_rule(session, id, body)))


@router.delete("/rules/{id}", response_model=Envelope[EmptyData])
async def delete_alert_rule(
    id: IdPath, session: SessionDep, audit: AuditDep
) -> Envelope[EmptyData]:
    """Delete a rule; its firing alerts resolve at the next evaluation."""
    rule = await service.delete_rule(session, id)
    audit.detail = {"name": rule.name, "metric": rule.metric}
    return ok(EmptyData())


# -- silences ---------------------------------------------------------------------------------
@router.get("/silences", response_model=Envelope[Page[AlertSilenceRead]])
async def list_alert_silences(
    session: SessionDep,
    page: PageDep,
    active: Annotated[bool, Query(description="only the silences in force now")] = False,
) -> Envelope[Page[AlertSilenceRead]]:
    total, items = await service.list_silences(
        session, utcnow(), active=active, offset=page.offset, limit=page.page_size
    )
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.post("/silences", response_model=Envelope[AlertSilenceRead], status_code=201)
async def create_alert_silence(
    body: AlertSilenceCreate, session: SessionDep, principal: CurrentUser, audit: AuditDep
) -> Envelope[AlertSilenceRead]:
    """Mute the alerts of a rule, a node, a group (with its sub-groups) or a tag until
    `ends_at`: they are still recorded and shown as silenced, and notify nobody."""
    audit.detail = body.model_dump(mode="json")
    now = utcnow()
    silence = await service.create_silence(session, body, principal.user_id, now)
    audit.resource_id = str(silence.id)
    return ok(service.present_silence(silence, now))


@router.get("/silences/{id}", response_model=Envelope[AlertSilenceRead])
async def get_alert_silence(id: IdPath, session: SessionDep) -> Envelope[AlertSilenceRead]:
    return ok(service.present_silence(await service.get_silence(session, id), utcnow()))


@router.put("/silences/{id}", response_model=Envelope[AlertSilenceRead])
async def update_alert_silence(
    id: IdPath, body: AlertSilenceUpdate, session: SessionDep, audit: AuditDep
) -> Envelope[AlertSilenceRead]:
    """Change a silence's reason or window; an `ends_at` of now ends it."""
    audit.detail = body.model_dump(mode="json", exclude_unset=True)
    now = utcnow()
    return ok(service.present_silence(await service.update_silence(session, id, body, now), now))


@router.delete("/silences/{id}", response_model=Envelope[EmptyData])
async def delete_alert_silence(
    id: IdPath, session: SessionDep, audit: AuditDep
) -> Envelope[EmptyData]:
    silence = await service.delete_silence(session, id)
    audit.detail = {"target_type": silence.target_type, "target_value": silence.target_value}
    return ok(EmptyData())


# -- alerts -----------------------------------------------------------------------------------
@router.get("", response_model=Envelope[Page[AlertRead]])
async def list_alerts(
    session: SessionDep,
    page: PageDep,
    status: AlertStatus | None = None,
    severity: Severity | None = None,
    node_id: QueryId = None,
    rule_id: QueryId = None,
    since: Annotated[StorableTime | None, Query(description="fired at or after")] = None,
    until: Annotated[StorableTime | None, Query(description="fired before")] = None,
) -> Envelope[Page[AlertRead]]:
    """Alerts, newest first."""
    filters = AlertFilter(
        status=status,
        severity=severity,
        node_id=node_id,
        rule_id=rule_id,
        since=_naive(since),
        until=_naive(until),
    )
    total, items = await service.list_alerts(
        session, filters, utcnow(), offset=page.offset, limit=page.page_size
    )
    return ok(Page(total=total, items=items, page=page.page, page_size=page.page_size))


@router.get("/{id}", response_model=Envelope[AlertRead])
async def get_alert(id: IdPath, session: SessionDep) -> Envelope[AlertRead]:
    return ok(await service.get_alert(session, id, utcnow()))


@router.post("/{id}/acknowledge", response_model=Envelope[AlertRead])
async def acknowledge_alert(
    id: IdPath, session: SessionDep, principal: CurrentUser, audit: AuditDep
) -> Envelope[AlertRead]:
    """Acknowledge an alert; one acknowledged already keeps its first acknowledgement."""
    alert, done = await service.acknowledge(session, id, principal.user_id, utcnow())
    audit.detail = {"already_acknowledged": not done}
    return ok(alert)


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=None)
