"""Alert notifications: channels, the delivery queue and sending it.

The alert evaluator calls `enqueue` inside its own transaction; nothing is sent inline, so a
slow or dead receiver never holds the evaluator up. The `notification.deliver` job calls
`deliver_due`, which claims due deliveries (committing the claim), sends them outside any
transaction with bounded concurrency, and records each outcome in a transaction of its own.
Delivery is at least once: a sender that dies mid-send leaves its claim to expire, and the
delivery is sent again (receivers deduplicate by the delivery id).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.config import NotifySettings
from opscaffold.manager.db import transaction
from opscaffold.manager.errors import ChannelAlreadyExists, ChannelNotFound, InvalidArgument
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger
from opscaffold.manager.models import NotificationChannel, NotificationDelivery
from opscaffold.manager.notification import repository, senders
from opscaffold.manager.notification.guard import Guard, TargetRefused, guarded_client
from opscaffold.manager.notification.render import Notification
from opscaffold.manager.notification.schemas import (
    CONFIGS,
    AlertFacts,
    ChannelCreate,
    ChannelRead,
    ChannelTestResult,
    ChannelUpdate,
    DeliveryRead,
)
from opscaffold.manager.notification.senders import DeliveryFailed, SendContext

log = get_logger("opscaffold.notification")
MAX_ERROR = 512
MAX_LISTED = 500  # deliveries listed per alert
LEASE_MARGIN = timedelta(seconds=30)
_random = secrets.SystemRandom()


# -- channels -------------------------------------------------------------------------------


def read(channel: NotificationChannel) -> ChannelRead:
    """A channel as the API shows it: secrets and header values never leave the Manager."""
    config = dict(channel.config)
    public: dict[str, Any] = {k: v for k, v in config.items() if k not in ("secret", "headers")}
    if channel.type in ("webhook", "dingtalk", "feishu"):
        public["secret_set"] = bool(config.get("secret"))
    if channel.type == "webhook":
        public["header_names"] = sorted(config.get("headers") or {})
    return ChannelRead(
        id=channel.id,
        name=channel.name,
        type=channel.type,
        enabled=bool(channel.enabled),
        config=public,
        created_by=channel.created_by,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _validated(channel_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The type's settings checked, or 400 naming each bad field (`body.config.url`)."""
    try:
        model = CONFIGS[channel_type].validate_python(dict(config))
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(["body", "config", *(str(p) for p in err["loc"])]),
                "message": err["msg"].removeprefix("Value error, "),
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        fields = ", ".join(e["field"] for e in errors)
        raise InvalidArgument(f"invalid request: {fields}", data={"errors": errors}) from None
    validated: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return validated


async def _check_target(config: Mapping[str, Any], guard: Guard) -> None:
    url = config.get("url")
    if not isinstance(url, str):
        return
    try:
        await guard.check_url(url)
    except TargetRefused as exc:
        error = {"field": "body.config.url", "message": str(exc), "type": "value_error"}
        raise InvalidArgument(
            f"invalid request: body.config.url {exc}", data={"errors": [error]}
        ) from None


async def list_channels(session: AsyncSession) -> list[ChannelRead]:
    return [read(c) for c in await repository.list_channels(session)]


async def get_channel(session: AsyncSession, channel_id: int) -> NotificationChannel:
    channel = await repository.get_channel(session, channel_id)
    if channel is None:
        raise ChannelNotFound(f"no notification channel {channel_id}")
    return channel


async def create_channel(
    session: AsyncSession, body: ChannelCreate, guard: Guard, user_id: int, now: datetime
) -> NotificationChannel:
    config = _validated(body.type, body.config)
    await _check_target(config, guard)
    if await repository.name_taken(session, body.name):
        raise ChannelAlreadyExists(f"a channel named {body.name!r} exists")
    channel = NotificationChannel(
        name=body.name,
        type=body.type,
        config=config,
        enabled=int(body.enabled),
        created_by=user_id,
        created_at=now,
        updated_at=now,
    )
    return await repository.add_channel(session, channel)


async def update_channel(
    session: AsyncSession, channel_id: int, body: ChannelUpdate, guard: Guard, now: datetime
) -> NotificationChannel:
    """Change what is given; a config without `secret` or `headers` keeps the stored ones."""
    channel = await repository.get_channel(session, channel_id, locked=True)
    if channel is None:
        raise ChannelNotFound(f"no notification channel {channel_id}")
    if body.name is not None and body.name != channel.name:
        if await repository.name_taken(session, body.name, other_than=channel.id):
            raise ChannelAlreadyExists(f"a channel named {body.name!r} exists")
        channel.name = body.name
    if body.enabled is not None:
        channel.enabled = int(body.enabled)
    if body.config is not None:
        merged = dict(body.config)
        for kept in ("secret", "headers"):
            if kept not in merged and kept in channel.config:
                merged[kept] = channel.config[kept]
        config = _validated(channel.type, merged)
        await _check_target(config, guard)
        channel.config = config
    channel.updated_at = now
    await session.flush()
    return channel


async def delete_channel(session: AsyncSession, channel_id: int) -> NotificationChannel:
    """Delete a channel; its deliveries not yet sent fail when their turn comes."""
    channel = await get_channel(session, channel_id)
    await repository.delete_channel(session, channel)
    return channel


# -- the queue ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """What the evaluator knows of an alert when it fires or resolves, and where its rule
    sends notifications."""

    alert_id: int
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
    event: Literal["firing", "resolved"]
    channel_ids: Sequence[int]

    def facts(self) -> AlertFacts:
        return AlertFacts(
            id=self.alert_id,
            rule_id=self.rule_id,
            rule_name=self.rule_name,
            node_id=self.node_id,
            node_name=self.node_name,
            metric=self.metric,
            operator=self.operator,
            threshold=self.threshold,
            current_value=self.current_value,
            severity=self.severity,
            status=self.status,
            fired_at=self.fired_at,
            resolved_at=self.resolved_at,
        )


async def resolve_channels(session: AsyncSession, refs: Sequence[str | int]) -> list[int]:
    """The ids of the channels `refs` name (by id or by name), in order, each once; a
    reference to no channel is refused naming its place in `notification_channels`."""
    ids = [r for r in refs if isinstance(r, int)]
    names = [r for r in refs if isinstance(r, str)]
    found_ids, id_of_name = await repository.channel_ids_by_ref(session, ids, names)
    resolved: list[int] = []
    for index, ref in enumerate(refs):
        channel_id = id_of_name.get(ref) if isinstance(ref, str) else ref
        if channel_id is None or (isinstance(ref, int) and ref not in found_ids):
            raise InvalidArgument(f"notification_channels.{index}: no channel {str(ref)[:64]!r}")
        resolved.append(channel_id)
    return list(dict.fromkeys(resolved))


async def enqueue(session: AsyncSession, notices: Sequence[AlertNotice], now: datetime) -> int:
    """Queue one delivery per notice and enabled channel in the caller's transaction (one
    query for the channels, multi-row inserts); nothing is sent here. Channels disabled or
    deleted are skipped. Returns how many deliveries were queued."""
    wanted = sorted({c for notice in notices for c in notice.channel_ids})
    enabled = await repository.enabled_channel_ids(session, wanted) if wanted else set()
    rows = [
        {
            "channel_id": channel_id,
            "alert_id": notice.alert_id,
            "event": notice.event,
            "payload": {"alert": notice.facts().model_dump(mode="json")},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for notice in notices
        for channel_id in dict.fromkeys(notice.channel_ids)
        if channel_id in enabled
    ]
    await repository.insert_deliveries(session, rows)
    return len(rows)


async def deliveries_of_alert(session: AsyncSession, alert_id: int) -> list[DeliveryRead]:
    return [
        DeliveryRead(
            id=d.id,
            channel_id=d.channel_id,
            channel_name=name,
            channel_type=kind,
            event=d.event,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            created_at=d.created_at,
            sent_at=d.sent_at,
        )
        for d, name, kind in await repository.deliveries_of_alert(session, alert_id, MAX_LISTED)
    ]


# -- sending --------------------------------------------------------------------------------


def backoff(attempts: int, settings: NotifySettings) -> timedelta:
    """How long to wait after the `attempts`-th failure: exponential, capped, and jittered
    (50–100 %) so deliveries that failed together do not retry together."""
    base = settings.backoff_base.total_seconds()
    cap = settings.backoff_max.total_seconds()
    delay = min(cap, base * 2 ** min(attempts - 1, 30))
    return timedelta(seconds=delay * _random.uniform(0.5, 1.0))


def lease_for(count: int, settings: NotifySettings) -> timedelta:
    """Long enough for `count` deliveries sent `concurrency` at a time, each bounded by the
    timeout: a claim outlives its sender only if the sender died."""
    rounds = max(1, math.ceil(count / settings.concurrency))
    return settings.timeout * rounds + LEASE_MARGIN


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    error: str | None  # None: sent
    final: bool = False  # failed for good whatever the attempts (e.g. channel deleted)


@dataclass(slots=True)
class RunStats:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def _reason(exc: BaseException, timeout: float) -> str:
    """A short reason of our own; never a receiver's body or an exception's free text."""
    if isinstance(exc, DeliveryFailed | TargetRefused):
        text = f"{type(exc).__name__}: {exc}" if isinstance(exc, TargetRefused) else str(exc)
    elif isinstance(exc, TimeoutError | httpx.TimeoutException):
        text = f"timeout after {timeout:g}s ({type(exc).__name__})"
    elif isinstance(exc, httpx.ConnectError):
        text = "ConnectError: could not connect"
    elif isinstance(exc, httpx.HTTPError):
        text = f"{type(exc).__name__}: HTTP exchange failed"
    else:
        text = f"{type(exc).__name__}: unexpected error"
    return text[:MAX_ERROR]


async def send_one(
    delivery: NotificationDelivery,
    channel: NotificationChannel,
    ctx: SendContext,
    limit: float,
) -> str | None:
    """Send one delivery through its channel's sender, bounded by `limit` seconds as a whole.
    Returns None when the receiver took it, else the short reason it did not."""
    payload = delivery.payload or {}
    alert = payload.get("alert")
    notification = Notification(
        delivery_id=delivery.id,
        event=delivery.event,
        alert=AlertFacts.model_validate(alert) if alert else None,
        channel_name=channel.name,
        sent_at=utcnow(),
    )
    try:
        async with asyncio.timeout(limit):
            await senders.send(channel.type, channel.config, notification, ctx)
    except Exception as exc:  # every failure is recorded as an outcome, never raised
        if not isinstance(exc, DeliveryFailed | TargetRefused | TimeoutError | httpx.HTTPError):
            log.warning("notification failed unexpectedly", delivery_id=delivery.id, exc_info=exc)
        return _reason(exc, limit)
    return None


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: NotifySettings,
    *,
    clock: Callable[[], datetime] = utcnow,
    max_rounds: int = 50,
) -> RunStats:
    """Claim due deliveries and send them, a batch at a time, until none are due (or
    `max_rounds` batches). Each round: claim and commit, send outside any transaction,
    `concurrency` at a time, and record outcomes as they come in."""
    stats = RunStats()
    guard = Guard.of(settings)
    timeout = settings.timeout.total_seconds()
    async with guarded_client(guard, timeout) as client:
        ctx = SendContext(client=client, smtp=settings.smtp)
        for _ in range(max_rounds):
            token = str(uuid.uuid4())
            now = clock()
            async with transaction(sessions) as session:
                ids = await repository.due_ids(session, now, settings.batch_size)
                lease_until = now + lease_for(len(ids), settings)
                await repository.claim(session, ids, token, now, lease_until)
                claimed = await repository.claimed(session, token)
            if not claimed:
                break
            stats.claimed += len(claimed)
            await _send_all(sessions, settings, claimed, token, ctx, clock, stats)
            if len(ids) < settings.batch_size:
                break
    return stats


async def _send_all(
    sessions: async_sessionmaker[AsyncSession],
    settings: NotifySettings,
    claimed: list[tuple[NotificationDelivery, NotificationChannel | None]],
    token: str,
    ctx: SendContext,
    clock: Callable[[], datetime],
    stats: RunStats,
) -> None:
    outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
    slots = asyncio.Semaphore(settings.concurrency)
    timeout = settings.timeout.total_seconds()

    async def one(delivery: NotificationDelivery, channel: NotificationChannel | None) -> None:
        if channel is None or not channel.enabled:
            why = "channel deleted" if channel is None else "channel disabled"
            await outcomes.put(Outcome(delivery.id, why, final=True))
            return
        async with slots:
            error = await send_one(delivery, channel, ctx, timeout)
        await outcomes.put(Outcome(delivery.id, error))

    attempts = {d.id: d.attempts for d, _ in claimed}
    senders_ = [asyncio.create_task(one(d, c)) for d, c in claimed]
    try:
        recorded = 0
        while recorded < len(claimed):
            batch = [await outcomes.get()]
            while not outcomes.empty():
                batch.append(outcomes.get_nowait())
            await _record(sessions, settings, token, batch, attempts, clock(), stats)
            recorded += len(batch)
    finally:
        for task in senders_:
            task.cancel()
        await asyncio.gather(*senders_, return_exceptions=True)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    settings: NotifySettings,
    token: str,
    batch: list[Outcome],
    attempts: Mapping[int, int],
    now: datetime,
    stats: RunStats,
) -> None:
    """Write outcomes as they come in, each only while this claim still holds its row."""
    async with transaction(sessions) as session:
        sent = [o.delivery_id for o in batch if o.error is None]
        stats.sent += await repository.record_sent(session, sent, token, now)
        for outcome in batch:
            if outcome.error is None:
                continue
            tries = attempts[outcome.delivery_id]
            values: dict[str, Any] = {"last_error": outcome.error[:MAX_ERROR]}
            if outcome.final or tries >= settings.max_attempts:
                values["status"] = "failed"
                stats.failed += 1
            else:
                values["status"] = "pending"
                next_at = now + backoff(tries, settings)
                values["next_attempt_at"] = next_at.replace(microsecond=0)
                stats.retrying += 1
            await repository.record_failure(session, outcome.delivery_id, token, values)


async def send_test(
    sessions: async_sessionmaker[AsyncSession],
    channel: NotificationChannel,
    settings: NotifySettings,
) -> ChannelTestResult:
    """Send a test message through the channel's own sender now, outside any transaction,
    and keep it as a delivery (event `test`) with its outcome; it is not retried."""
    now = utcnow()
    token = str(uuid.uuid4())
    async with transaction(sessions) as session:
        delivery_id = await repository.insert_delivery(
            session,
            {
                "channel_id": channel.id,
                "alert_id": None,
                "event": "test",
                "payload": {"alert": None},
                "status": "sending",
                "attempts": 1,
                "next_attempt_at": now,
                "lease_until": now + lease_for(1, settings),
                "claimed_by": token,
                "created_at": now,
            },
        )
    delivery = NotificationDelivery(id=delivery_id, event="test", payload={"alert": None})
    guard = Guard.of(settings)
    timeout = settings.timeout.total_seconds()
    async with guarded_client(guard, timeout) as client:
        ctx = SendContext(client=client, smtp=settings.smtp)
        error = await send_one(delivery, channel, ctx, timeout)
    async with transaction(sessions) as session:
        if error is None:
            await repository.record_sent(session, [delivery_id], token, utcnow())
        else:
            values = {"status": "failed", "last_error": error}
            await repository.record_failure(session, delivery_id, token, values)
    return ChannelTestResult(
        delivery_id=delivery_id, status="sent" if error is None else "failed", error=error
    )
