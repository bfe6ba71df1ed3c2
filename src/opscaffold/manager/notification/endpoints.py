"""Alert notifications over REST: channels (admin) and the deliveries of an alert."""

from __future__ import annotations

from fastapi import APIRouter

from opscaffold.manager.db import end_read
from opscaffold.manager.deps import AuditDep, CurrentUser, RuntimeDep, SessionDep
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.kit.storable import IdPath
from opscaffold.manager.notification import service
from opscaffold.manager.notification.guard import Guard
from opscaffold.manager.notification.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelTestResult,
    ChannelUpdate,
    DeliveryRead,
)

router = APIRouter(prefix=f"{API_PREFIX}/alerts", tags=["notifications"])


@router.get("/channels", response_model=Envelope[list[ChannelRead]])
async def list_channels(session: SessionDep) -> Envelope[list[ChannelRead]]:
    """Notification channels; secrets show only as `secret_set`."""
    return ok(await service.list_channels(session))


@router.post("/channels", response_model=Envelope[ChannelRead], status_code=201)
async def create_channel(
    body: ChannelCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CurrentUser,
    audit: AuditDep,
) -> Envelope[ChannelRead]:
    """Add a channel. `config` by `type`: webhook {url, secret, headers?}, dingtalk {url,
    secret?}, wecom {url}, feishu {url, secret?}, email {recipients}. A URL must be http(s)
    and reach a public address (`alert.notify.allow_private_networks` /
    `allowed_networks` widen that); otherwise 400/1001 naming `body.config.url`."""
    audit.detail = {"name": body.name, "type": body.type}
    guard = Guard.of(runtime.settings.alert.notify)
    channel = await service.create_channel(session, body, guard, principal.user_id, utcnow())
    audit.resource_id = str(channel.id)
    return ok(service.read(channel))


@router.get("/channels/{id}", response_model=Envelope[ChannelRead])
async def get_channel(id: IdPath, session: SessionDep) -> Envelope[ChannelRead]:
    return ok(service.read(await service.get_channel(session, id)))


@router.put("/channels/{id}", response_model=Envelope[ChannelRead])
async def update_channel(
    id: IdPath, body: ChannelUpdate, session: SessionDep, runtime: RuntimeDep, audit: AuditDep
) -> Envelope[ChannelRead]:
    """Change a channel; a `config` without `secret` (or `headers`) keeps the stored one."""
    audit.detail = body.model_dump(exclude_none=True, exclude={"config"})
    if body.config is not None:
        audit.detail["config_changed"] = True
    guard = Guard.of(runtime.settings.alert.notify)
    channel = await service.update_channel(session, id, body, guard, utcnow())
    return ok(service.read(channel))


@router.delete("/channels/{id}", response_model=Envelope[ChannelRead])
async def delete_channel(id: IdPath, session: SessionDep, audit: AuditDep) -> Envelope[ChannelRead]:
    """Delete a channel; its notifications not yet sent fail as `channel deleted`."""
    channel = await service.delete_channel(session, id)
    audit.detail = {"name": channel.name, "type": channel.type}
    return ok(service.read(channel))


@router.post("/channels/{id}/test", response_model=Envelope[ChannelTestResult])
async def test_channel(
    id: IdPath, session: SessionDep, runtime: RuntimeDep, audit: AuditDep
) -> Envelope[ChannelTestResult]:
    """Send a test message through the channel now and say how it went (not retried)."""
    channel = await service.get_channel(session, id)
    # No transaction stays open while the receiver answers (up to alert.notify.timeout);
    # the channel is kept as read (ending the transaction would expire it).
    session.expunge(channel)
    await end_read(session)
    result = await service.send_test(runtime.sessions, channel, runtime.settings.alert.notify)
    audit.detail = {"delivery_id": result.delivery_id, "status": result.status}
    return ok(result)


@router.get("/{id}/notifications", response_model=Envelope[list[DeliveryRead]])
async def list_alert_notifications(id: IdPath, session: SessionDep) -> Envelope[list[DeliveryRead]]:
    """The notifications of an alert: each channel's delivery, its status, attempts and the
    last error (an HTTP status, a robot's error code or a short reason)."""
    return ok(await service.deliveries_of_alert(session, id))
