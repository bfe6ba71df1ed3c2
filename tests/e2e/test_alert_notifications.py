"""Alert notifications through a real Manager: simulated nodes go hot, the rule fires and a
webhook receiver and an SMTP server started by the test are told (signed, over STARTTLS);
values drop and they are told it resolved; a silenced node's alert is recorded and notifies
nobody."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import Api, Manager
from tests.e2e.test_alerts import ALERTING, CALM, HOT, alerts, cpu_rule, finished, fleet_of, until
from tests.e2e.test_daemon_process import ADMIN_PASSWORD
from tests.manager.notification.receivers import Mail, Receiver, http_receiver, smtp_receiver

pytestmark = pytest.mark.timeout(150)
SECRET = "e2e-webhook-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[Mail]]]:
    with smtp_receiver(tmp_path) as running:
        yield running


def verified(received: Any) -> dict[str, Any]:
    """The body of a webhook delivery whose signature is right (else the test fails)."""
    timestamp = received.headers["X-Ops-Timestamp"]
    digest = hmac.new(SECRET.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256)
    assert received.headers["X-Ops-Signature"] == f"sha256={digest.hexdigest()}"
    body: dict[str, Any] = received.json()
    return body


async def test_firing_and_resolved_reach_a_webhook_and_a_mailbox_and_a_silence_mutes(
    tmp_path: Path, receiver: Receiver, mail_server: tuple[int, Path, list[Mail]]
) -> None:
    smtp_port, ca_file, mails = mail_server
    manager = Manager(
        tmp_path,
        ALERTING
        | {
            "OPS_ALERT__NOTIFY__INTERVAL": "1s",
            "OPS_ALERT__NOTIFY__ALLOW_PRIVATE_NETWORKS": "true",  # the receivers are local
            "OPS_ALERT__NOTIFY__SMTP__HOST": "127.0.0.1",
            "OPS_ALERT__NOTIFY__SMTP__PORT": str(smtp_port),
            "OPS_ALERT__NOTIFY__SMTP__FROM_ADDRESS": "ops@example.com",
            "OPS_ALERT__NOTIFY__SMTP__CA_FILE": str(ca_file),
        },
    )
    manager.start()
    fleet = fleet_of(manager, 2)
    running = asyncio.create_task(fleet.run())
    try:
        api = Api(manager, ADMIN_PASSWORD)
        hook = {"url": receiver.url, "secret": SECRET}
        api.send("POST", "/alerts/channels", {"name": "hook", "type": "webhook", "config": hook})
        mailbox = {"recipients": ["oncall@example.com"]}
        api.send("POST", "/alerts/channels", {"name": "mail", "type": "email", "config": mailbox})
        rule = api.send(
            "POST",
            "/alerts/rules",
            cpu_rule(duration=2) | {"notification_channels": ["hook", "mail"]},
        )
        assert len(rule["notification_channels"]) == 2
        await until(lambda: api.get("/nodes", status="online")["total"] == 2, "nodes online")
        nodes = sorted(n["id"] for n in api.get("/nodes")["items"])

        fleet.pin_metrics(HOT, nodes=[0])
        [fired] = await until(lambda: alerts(api, status="firing"), "the alert fires")
        await until(lambda: len(receiver.received) == 1 and len(mails) == 1, "both are told")
        firing = verified(receiver.received[0])
        assert (firing["event"], firing["alert"]["id"]) == ("firing", fired["id"])
        assert firing["alert"]["rule_name"] == "cpu high"
        assert firing["alert"]["current_value"] > 90
        [mail] = mails
        assert (mail.recipients, mail.tls) == (["oncall@example.com"], True)
        assert "cpu high" in str(mail.message["Subject"])

        fleet.pin_metrics(CALM, nodes=[0])
        await until(lambda: len(receiver.received) == 2 and len(mails) == 2, "both hear it end")
        resolved = verified(receiver.received[1])
        assert (resolved["event"], resolved["alert"]["id"]) == ("resolved", fired["id"])
        assert resolved["alert"]["resolved_at"] is not None

        ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        silence = {"target_type": "node", "target_value": str(nodes[1]), "reason": "maintenance"}
        api.send("POST", "/alerts/silences", silence | {"ends_at": ends})
        fleet.pin_metrics(HOT, nodes=[1])
        [muted] = await until(lambda: alerts(api, status="firing"), "the silenced one fires")
        assert (muted["node_id"], muted["silenced"]) == (nodes[1], True)
        # Three delivery rounds after it fired, nothing was queued nor sent for it.
        rounds = finished(manager, "notification.deliver")
        await until(lambda: finished(manager, "notification.deliver") >= rounds + 3, "3 rounds")
        assert api.get(f"/alerts/{muted['id']}/notifications") == []
        assert (len(receiver.received), len(mails)) == (2, 2)
        told = api.get(f"/alerts/{fired['id']}/notifications")
        assert sorted((d["event"], d["status"]) for d in told) == [
            ("firing", "sent"),
            ("firing", "sent"),
            ("resolved", "sent"),
            ("resolved", "sent"),
        ]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        manager.ensure_stopped()
