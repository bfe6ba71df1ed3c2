"""One sender per channel type; `send` picks it and validates the stored settings first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from opscaffold.manager.notification.render import Notification
from opscaffold.manager.notification.schemas import CONFIGS
from opscaffold.manager.notification.senders import email, robots, webhook
from opscaffold.manager.notification.senders.base import DeliveryFailed, SendContext

SENDERS: dict[str, Callable[[Any, Notification, SendContext], Awaitable[None]]] = {
    "webhook": webhook.send,
    "dingtalk": robots.send_dingtalk,
    "wecom": robots.send_wecom,
    "feishu": robots.send_feishu,
    "email": email.send,
}


async def send(
    channel_type: str, config: dict[str, Any], n: Notification, ctx: SendContext
) -> None:
    """Send one notification; raises DeliveryFailed (or the guard's refusal) when not taken."""
    adapter = CONFIGS.get(channel_type)
    if adapter is None:
        raise DeliveryFailed(f"unknown channel type {channel_type[:16]}")
    await SENDERS[channel_type](adapter.validate_python(config), n, ctx)


__all__ = ["DeliveryFailed", "SendContext", "send"]
