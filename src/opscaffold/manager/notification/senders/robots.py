"""Group robots of DingTalk, WeCom and Feishu, each in its documented message and signing
format. Success is HTTP 200 with the robot's error code 0; anything else is a failure,
recorded as the status or the code (never the answer's text)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx

from opscaffold.manager.notification import render
from opscaffold.manager.notification.render import Notification
from opscaffold.manager.notification.schemas import DingTalkConfig, FeishuConfig, WeComConfig
from opscaffold.manager.notification.senders.base import SendContext, compact, post, robot_code

JSON_HEADERS = {"User-Agent": "ops-scaffold-manager"}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")); the URL encodes it."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


async def send_dingtalk(config: DingTalkConfig, n: Notification, ctx: SendContext) -> None:
    url = httpx.URL(config.url)
    if config.secret:
        timestamp = int(n.sent_at.timestamp() * 1000)
        sign = dingtalk_sign(config.secret, timestamp)
        url = url.copy_merge_params({"timestamp": str(timestamp), "sign": sign})
    body = {
        "msgtype": "markdown",
        "markdown": {"title": render.title(n), "text": render.markdown(n)},
    }
    status, answer = await post(ctx.client, url, compact(body), JSON_HEADERS)
    robot_code(status, answer, "errcode")


async def send_wecom(config: WeComConfig, n: Notification, ctx: SendContext) -> None:
    body = {"msgtype": "markdown", "markdown": {"content": render.markdown(n)}}
    status, answer = await post(ctx.client, config.url, compact(body), JSON_HEADERS)
    robot_code(status, answer, "errcode")


async def send_feishu(config: FeishuConfig, n: Notification, ctx: SendContext) -> None:
    body: dict[str, object] = {"msg_type": "text", "content": {"text": render.text(n)}}
    if config.secret:
        timestamp = int(n.sent_at.timestamp())
        body = {"timestamp": str(timestamp), "sign": feishu_sign(config.secret, timestamp), **body}
    status, answer = await post(ctx.client, config.url, compact(body), JSON_HEADERS)
    robot_code(status, answer, "code", "StatusCode")
