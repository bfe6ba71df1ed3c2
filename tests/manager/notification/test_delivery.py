"""Sending the delivery queue to real local receivers: webhook signatures, retries with
backoff, giving up, timeouts that hold up no other channel, the robots' formats and
signatures, email over STARTTLS, the guard at send time, lost senders and racing ones."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from opscaffold.manager.config import NotifySettings, SmtpSettings
from opscaffold.manager.db import transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import NotificationChannel, NotificationDelivery
from opscaffold.manager.notification import repository, service
from opscaffold.manager.notification.service import AlertNotice
from tests.helpers import free_port, wait_until
from tests.manager import factories as f
from tests.manager.conftest import Stack, empty_database
from tests.manager.notification.receivers import http_receiver, smtp_receiver

SECRET = "s3cret-key-of-16+chars"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def db(stack: Stack) -> Stack:
    await empty_database(stack)
    return stack


def notify(**values: Any) -> NotifySettings:
    """Receivers listen on 127.0.0.1: the tests allow exactly that network."""
    defaults: dict[str, Any] = {
        "allowed_networks": ["127.0.0.1/32"],
        "backoff_base": "1s",
        "timeout": "5s",
    }
    return NotifySettings.model_validate(defaults | values)


async def add_channel(stack: Stack, type: str, config: dict[str, Any], **values: Any) -> int:
    async with transaction(stack.runtime.sessions) as session:
        channel = NotificationChannel(
            name=values.pop("name", f"{type}-{free_port()}"),
            type=type,
            config=config,
            created_by=1,
            **values,
        )
        session.add(channel)
        await session.flush()
        return channel.id


def notice(channel_ids: list[int], alert_id: int = 7, event: str = "firing") -> AlertNotice:
    return AlertNotice(
        alert_id=alert_id,
        rule_id=3,
        rule_name="cpu high",
        node_id=12,
        node_name="web-1",
        metric="cpu_usage",
        operator="gt",
        threshold=90.0,
        current_value=95.5,
        severity="critical",
        status="firing" if event == "firing" else "resolved",
        fired_at=datetime(2026, 12, 1, 8, 0, 0),
        resolved_at=None if event == "firing" else datetime(2026, 12, 1, 8, 5, 0),
        event=event,  # type: ignore[arg-type]
        channel_ids=channel_ids,
    )


async def enqueue(stack: Stack, *notices: AlertNotice) -> int:
    async with transaction(stack.runtime.sessions) as session:
        return await service.enqueue(session, notices, utcnow())


async def deliveries(stack: Stack) -> list[NotificationDelivery]:
    async with stack.runtime.sessions() as session:
        stmt = sa.select(NotificationDelivery).order_by(NotificationDelivery.id)
        return list((await session.scalars(stmt)).all())


async def deliver(stack: Stack, settings: NotifySettings, at: datetime | None = None) -> Any:
    clock = (lambda: at) if at is not None else utcnow
    return await service.deliver_due(stack.runtime.sessions, settings, clock=clock)


def later(minutes: int) -> datetime:
    return utcnow() + timedelta(minutes=minutes)


async def test_a_webhook_arrives_signed_with_the_channels_key(db: Stack) -> None:
    with http_receiver() as receiver:
        channel = await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
        assert await enqueue(db, notice([channel])) == 1

        stats = await deliver(db, notify())

    assert (stats.claimed, stats.sent) == (1, 1)
    [row] = await deliveries(db)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None
    [request] = receiver.received
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["x-ops-event"] == "firing"
    assert headers["x-ops-delivery"] == str(row.id)
    timestamp = headers["x-ops-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert headers["x-ops-signature"] == f"sha256={expected.hexdigest()}"
    body = request.json()
    assert body["event"] == "firing"
    assert body["delivery_id"] == str(row.id)
    assert body["sent_at"].endswith("Z")
    assert body["alert"] == {
        "id": 7,
        "rule_id": 3,
        "rule_name": "cpu high",
        "node_id": 12,
        "node_name": "web-1",
        "metric": "cpu_usage",
        "operator": "gt",
        "threshold": 90.0,
        "current_value": 95.5,
        "severity": "critical",
        "status": "firing",
        "fired_at": "2026-12-01T08:00:00Z",
        "resolved_at": None,
    }


async def test_a_failed_attempt_is_retried_after_its_backoff(db: Stack) -> None:
    with http_receiver(statuses=[500, 200]) as receiver:
        channel = await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
        await enqueue(db, notice([channel]))

        first = await deliver(db, notify(backoff_base="30s"))
        [row] = await deliveries(db)
        assert (first.retrying, row.status, row.attempts) == (1, "pending", 1)
        assert row.last_error == "HTTP 500"
        assert row.next_attempt_at > utcnow()  # not due yet: a run now claims nothing
        assert (await deliver(db, notify(backoff_base="30s"))).claimed == 0

        await deliver(db, notify(), at=later(5))

    [row] = await deliveries(db)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    ids = {r.headers["X-Ops-Delivery"] for r in receiver.received}
    assert len(receiver.received) == 2
    assert ids == {str(row.id)}  # the same delivery id both times: receivers deduplicate


async def test_a_dead_receiver_fails_after_max_attempts(db: Stack) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    channel = await add_channel(db, "webhook", {"url": url, "secret": SECRET})
    await enqueue(db, notice([channel]))
    settings = notify(max_attempts=3)

    for hour in range(3):
        await deliver(db, settings, at=later(60 * hour))

    [row] = await deliveries(db)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "ConnectError: could not connect"
    assert (await deliver(db, settings, at=later(600))).claimed == 0


async def test_a_hanging_receiver_holds_up_no_other_channel(db: Stack) -> None:
    with http_receiver(hang=True) as slow, http_receiver() as fast:
        slow_id = await add_channel(db, "webhook", {"url": slow.url, "secret": SECRET})
        fast_id = await add_channel(db, "webhook", {"url": fast.url, "secret": SECRET})
        await enqueue(db, notice([slow_id, fast_id]))

        run = asyncio.create_task(deliver(db, notify(timeout="3s")))

        async def fast_sent_while_slow_hangs() -> bool:
            rows = {r.channel_id: r for r in await deliveries(db)}
            return rows[fast_id].status == "sent"

        await wait_until(fast_sent_while_slow_hangs, timeout=20, what="the fast channel is sent")
        assert slow.arrived.is_set()
        assert not slow.release.is_set()
        assert not run.done()  # the slow one is still waiting for its answer
        stats = await run

    assert (stats.sent, stats.retrying) == (1, 1)
    rows = {r.channel_id: r for r in await deliveries(db)}
    assert rows[slow_id].status == "pending"
    assert (rows[slow_id].last_error or "").startswith("timeout after 3s")


async def test_dingtalk_markdown_signed_as_documented(db: Stack) -> None:
    with http_receiver(answer=b'{"errcode":0,"errmsg":"ok"}') as robot:
        url = f"http://127.0.0.1:{robot.port}/robot/send?access_token=abc"
        channel = await add_channel(db, "dingtalk", {"url": url, "secret": "SECdingtalk"})
        await enqueue(db, notice([channel]))
        await deliver(db, notify())

    [request] = robot.received
    query = parse_qs(urlsplit(request.path).query)
    assert query["access_token"] == ["abc"]
    timestamp = query["timestamp"][0]
    mac = hmac.new(b"SECdingtalk", f"{timestamp}\nSECdingtalk".encode(), hashlib.sha256)
    assert query["sign"] == [base64.b64encode(mac.digest()).decode()]
    assert abs(int(timestamp) / 1000 - utcnow().timestamp()) < 3600 * 24
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "[FIRING] critical: cpu high on web-1"
    assert "cpu_usage = 95.5 (> 90)" in body["markdown"]["text"]
    assert "2026-12-01T08:00:00Z" in body["markdown"]["text"]
    assert (await deliveries(db))[0].status == "sent"


async def test_wecom_markdown_and_a_robots_error_code_without_its_text(db: Stack) -> None:
    answer = b'{"errcode":93000,"errmsg":"private words of the receiver"}'
    with http_receiver(answer=b'{"errcode":0}') as good, http_receiver(answer=answer) as bad:
        ok_id = await add_channel(db, "wecom", {"url": good.url})
        bad_id = await add_channel(db, "wecom", {"url": bad.url})
        await enqueue(db, notice([ok_id, bad_id], event="resolved"))
        await deliver(db, notify())

    body = good.received[0].json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith("### [RESOLVED] critical: cpu high on web-1")
    assert "Resolved at: 2026-12-01T08:05:00Z" in content
    rows = {r.channel_id: r for r in await deliveries(db)}
    assert rows[ok_id].status == "sent"
    assert (rows[bad_id].status, rows[bad_id].last_error) == ("pending", "errcode 93000")


async def test_feishu_text_signed_as_documented(db: Stack) -> None:
    with http_receiver(answer=b'{"code":0,"msg":"success"}') as bot:
        channel = await add_channel(db, "feishu", {"url": bot.url, "secret": "feishu-secret"})
        await enqueue(db, notice([channel]))
        await deliver(db, notify())

    body = bot.received[0].json()
    timestamp = body["timestamp"]
    key = f"{timestamp}\nfeishu-secret".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "text"
    assert body["content"]["text"].startswith("[FIRING] critical: cpu high on web-1\n")
    assert (await deliveries(db))[0].status == "sent"


async def test_email_arrives_over_starttls(db: Stack, tmp_path: Path) -> None:
    with smtp_receiver(tmp_path) as (port, ca_file, mails):
        smtp = SmtpSettings(
            host="127.0.0.1",
            port=port,
            from_address="ops@example.com",
            security="starttls",
            ca_file=ca_file,
        )
        recipients = ["oncall@example.com", "lead@example.com"]
        channel = await add_channel(db, "email", {"recipients": recipients})
        await enqueue(db, notice([channel]))
        stats = await deliver(db, notify(smtp=smtp))

    assert stats.sent == 1, (await deliveries(db))[0].last_error
    [mail] = mails
    assert mail.tls
    assert mail.sender == "ops@example.com"
    assert mail.recipients == recipients
    assert mail.message["Subject"] == "[FIRING] critical: cpu high on web-1"
    assert "Node: web-1 (#12)" in str(mail.message.get_payload())


async def test_email_without_the_servers_ca_is_refused(db: Stack, tmp_path: Path) -> None:
    with smtp_receiver(tmp_path) as (port, _, mails):
        smtp = SmtpSettings(host="127.0.0.1", port=port, from_address="ops@example.com")
        channel = await add_channel(db, "email", {"recipients": ["oncall@example.com"]})
        await enqueue(db, notice([channel]))
        await deliver(db, notify(smtp=smtp))

    assert mails == []
    [row] = await deliveries(db)
    assert row.status == "pending"
    assert row.last_error == "TLS: SSLCertVerificationError"


async def test_a_stored_channel_the_guard_now_refuses_is_not_contacted(db: Stack) -> None:
    with http_receiver() as receiver:
        channel = await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
        await enqueue(db, notice([channel]))

        await deliver(db, notify(allowed_networks=[]))

    assert receiver.received == []
    [row] = await deliveries(db)
    assert row.status == "pending"
    assert row.last_error == "TargetRefused: 127.0.0.1 is loopback"


async def test_a_sender_that_died_mid_send_loses_nothing(db: Stack) -> None:
    with http_receiver() as receiver:
        channel = await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
        await enqueue(db, notice([channel]))
        now = utcnow()
        async with transaction(db.runtime.sessions) as session:  # claimed, then the sender died
            ids = await repository.due_ids(session, now, 10)
            assert await repository.claim(session, ids, "dead", now, now + timedelta(minutes=1))

        assert (await deliver(db, notify())).claimed == 0  # its lease still holds
        assert receiver.received == []
        stats = await deliver(db, notify(), at=now + timedelta(minutes=2))

    assert stats.sent == 1
    [row] = await deliveries(db)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(receiver.received) == 1


async def test_racing_senders_send_each_delivery_once(db: Stack) -> None:
    with http_receiver() as receiver:
        channels = [
            await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
            for _ in range(4)
        ]
        await enqueue(db, *(notice(channels, alert_id=i) for i in range(1, 11)))
        settings = notify(batch_size=7)

        await asyncio.gather(*(deliver(db, settings) for _ in range(3)))

    sent = [r.headers["X-Ops-Delivery"] for r in receiver.received]
    assert len(sent) == 40
    assert len(set(sent)) == 40
    assert {r.status for r in await deliveries(db)} == {"sent"}


async def test_enqueue_skips_disabled_and_deleted_channels_in_one_insert(db: Stack) -> None:
    on = await add_channel(db, "wecom", {"url": "http://127.0.0.1:9/x"})
    off = await add_channel(db, "wecom", {"url": "http://127.0.0.1:9/y"}, enabled=0)
    notices = [notice([on, off, 999_999], alert_id=i) for i in range(1, 201)]

    with f.counting_statements(db) as statements:
        assert await enqueue(db, *notices) == 200

    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    rows = await deliveries(db)
    assert {r.channel_id for r in rows} == {on}
    assert {r.event for r in rows} == {"firing"}
    assert rows[0].payload["alert"]["rule_name"] == "cpu high"


async def test_the_job_runs_in_the_managers_job_runner(db: Stack) -> None:
    from opscaffold.manager.jobs.runner import JobRunner, tick_of
    from opscaffold.manager.notification.jobs import deliver as deliver_job

    with http_receiver() as receiver:
        channel = await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
        await enqueue(db, notice([channel]))
        settings = db.settings.model_copy(deep=True)
        settings.alert.notify = notify()
        runner = JobRunner(db.runtime.sessions, settings, {deliver_job.name: deliver_job}, "r1")
        tick = tick_of(utcnow(), settings.alert.notify.interval)
        assert await runner.run_once(deliver_job, tick)

    assert [r.status for r in await deliveries(db)] == ["sent"]
    assert len(receiver.received) == 1


async def test_the_httpx_client_does_not_follow_redirects(db: Stack) -> None:
    with http_receiver(statuses=[302]) as receiver:
        channel = await add_channel(db, "webhook", {"url": receiver.url, "secret": SECRET})
        await enqueue(db, notice([channel]))
        await deliver(db, notify())

    assert len(receiver.received) == 1
    assert (await deliveries(db))[0].last_error == "HTTP 302"
