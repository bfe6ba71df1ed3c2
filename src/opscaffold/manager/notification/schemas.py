"""Notification channels and deliveries over REST, and what a notification says.

A channel's `config` depends on its `type`:

| type | config |
|---|---|
| webhook | `url`, `secret` (HMAC key, 16–256 characters), `headers` (optional, ≤ 20) |
| dingtalk | `url`, `secret` (optional: the robot's signing secret) |
| wecom | `url` |
| feishu | `url`, `secret` (optional: the bot's signing secret) |
| email | `recipients` (1–50 addresses) |

Secrets and header values are write-only: a channel read shows `secret_set` and
`header_names`, and an update that leaves `secret` (or `headers`) out keeps the stored one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    field_serializer,
)

from opscaffold.manager.kit.clock import rfc3339

ChannelType = Literal["webhook", "email", "dingtalk", "wecom", "feishu"]
Event = Literal["firing", "resolved", "test"]
DeliveryStatus = Literal["pending", "sending", "sent", "failed"]
MAX_URL = 1024
# Headers the sender sets itself, or that would change how the request is framed.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "user-agent"}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")


def _http_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise ValueError("is not a URL") from None
    if url.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not url.host:
        raise ValueError("must name a host")
    if url.userinfo:
        raise ValueError("must not carry a user name or password")
    return value


def _headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name[:64]!r} is not a valid token")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("x-ops-"):
            raise ValueError(f"header {name!r} is set by the Manager")
        if any(c in text for c in "\r\n\x00") or len(text) > 1024:
            raise ValueError(f"header {name!r} has an invalid value")
    return value


Url = Annotated[str, Field(min_length=1, max_length=MAX_URL), AfterValidator(_http_url)]
Secret = Annotated[str, Field(min_length=1, max_length=256)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookConfig(_Config):
    url: Url
    secret: Annotated[str, Field(min_length=16, max_length=256)]
    headers: Annotated[dict[str, str], Field(max_length=20), AfterValidator(_headers)] = Field(
        default_factory=dict
    )


class DingTalkConfig(_Config):
    url: Url
    secret: Secret | None = None


class WeComConfig(_Config):
    url: Url


class FeishuConfig(_Config):
    url: Url
    secret: Secret | None = None


class EmailConfig(_Config):
    recipients: Annotated[list[EmailStr], Field(min_length=1, max_length=50)]


ChannelConfig = WebhookConfig | DingTalkConfig | WeComConfig | FeishuConfig | EmailConfig
CONFIGS: dict[str, TypeAdapter[Any]] = {
    "webhook": TypeAdapter(WebhookConfig),
    "dingtalk": TypeAdapter(DingTalkConfig),
    "wecom": TypeAdapter(WeComConfig),
    "feishu": TypeAdapter(FeishuConfig),
    "email": TypeAdapter(EmailConfig),
}
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: ChannelType
    enabled: bool = True
    config: dict[str, Any] = Field(description="the type's settings (see the table above)")


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    enabled: bool | None = None
    config: dict[str, Any] | None = Field(
        None, description="the type's settings; a left-out secret or headers are kept"
    )


class ChannelRead(BaseModel):
    id: int
    name: str
    type: ChannelType
    enabled: bool
    config: dict[str, Any] = Field(
        description="the settings without secrets: `secret_set`, `header_names` instead"
    )
    created_by: int
    created_at: datetime
    updated_at: datetime

    @field_serializer("created_at", "updated_at")
    def _times(self, value: datetime) -> str | None:
        return rfc3339(value)


class ChannelTestResult(BaseModel):
    delivery_id: int
    status: Literal["sent", "failed"]
    error: str | None = Field(description="why it failed: status, robot error code or reason")


class AlertFacts(BaseModel):
    """The alert as a notification tells it (rendered when the event is queued)."""

    id: int
    rule_id: int
    rule_name: str
    node_id: int
    node_name: str
    metric: str
    operator: str
    threshold: float
    current_value: float
    severity: str
    status: str
    fired_at: datetime
    resolved_at: datetime | None

    @field_serializer("fired_at", "resolved_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class DeliveryRead(BaseModel):
    id: int
    channel_id: int
    channel_name: str | None = Field(description="none once the channel is deleted")
    channel_type: str | None
    event: Event
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="when a pending one is tried next")
    created_at: datetime
    sent_at: datetime | None

    @field_serializer("next_attempt_at", "created_at", "sent_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)
