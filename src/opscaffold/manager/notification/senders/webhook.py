"""Generic webhook: JSON {event, alert, delivery_id, sent_at}, signed with the channel's key.

Headers: `X-Ops-Event`, `X-Ops-Delivery` (the delivery id: deliveries are at least once, so
receivers deduplicate by it), `X-Ops-Timestamp` (Unix seconds) and `X-Ops-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` over the exact body bytes.
Any 2xx is success; anything else (a redirect too) is a failure, retried.
"""

from __future__ import annotations

import hashlib
import hmac

from opscaffold.manager.notification import render
from opscaffold.manager.notification.render import Notification
from opscaffold.manager.notification.schemas import WebhookConfig
from opscaffold.manager.notification.senders.base import DeliveryFailed, SendContext, compact, post


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


async def send(config: WebhookConfig, n: Notification, ctx: SendContext) -> None:
    body = compact(render.webhook_body(n))
    timestamp = str(int(n.sent_at.timestamp()))
    headers = {
        **config.headers,
        "User-Agent": "ops-scaffold-manager",
        "X-Ops-Event": n.event,
        "X-Ops-Delivery": str(n.delivery_id),
        "X-Ops-Timestamp": timestamp,
        "X-Ops-Signature": signature(config.secret, timestamp, body),
    }
    status, _ = await post(ctx.client, config.url, body, headers)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
