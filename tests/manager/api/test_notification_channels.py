"""Notification channels over REST: create, read (secrets write-only), update (a left-out
secret is kept), delete, the test message, the guard at save time, bad input, RBAC, audit,
and the notifications of an alert."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opscaffold.manager.db import transaction
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.notification import service
from tests.helpers import free_port
from tests.manager.conftest import Stack, bearer, login, make_user
from tests.manager.notification.receivers import http_receiver
from tests.manager.notification.test_delivery import notice, notify

CHANNELS = "/api/v1/alerts/channels"
SECRET = "first-secret-0123456789"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def loopback_allowed(stack: Stack) -> Iterator[None]:
    """The receivers listen on loopback: allow it, as an operator would allow a network."""
    settings = stack.settings.alert.notify
    saved = settings.allowed_networks
    settings.allowed_networks = ["127.0.0.0/8", "::1/128"]
    try:
        yield
    finally:
        settings.allowed_networks = saved


def webhook(url: str, **config: Any) -> dict[str, Any]:
    config = {"url": url, "secret": SECRET, **config}
    return {"name": "ops-hook", "type": "webhook", "config": config}


async def create(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await client.post(CHANNELS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def field_errors(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["data"]["errors"]]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "169.254.169.254", "10.0.0.1", "[::ffff:127.0.0.1]", "localhost"],
)
async def test_the_guard_refuses_internal_targets_at_create(
    client: httpx.AsyncClient, admin_headers: dict[str, str], host: str
) -> None:
    response = await client.post(
        CHANNELS, json=webhook(f"http://{host}:8080/hook"), headers=admin_headers
    )

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    assert field_errors(response) == ["body.config.url"]
    assert (await client.get(CHANNELS, headers=admin_headers)).json()["data"] == []


async def test_allowed_networks_let_a_loopback_receiver_in(
    client: httpx.AsyncClient, admin_headers: dict[str, str], loopback_allowed: None
) -> None:
    for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "localhost", "[::1]"):
        body = webhook(f"http://{host}:8080/hook") | {"name": f"hook {host}"}
        await create(client, admin_headers, body)
    refused = await client.post(
        CHANNELS, json=webhook("http://10.0.0.1/hook") | {"name": "x"}, headers=admin_headers
    )
    assert refused.status_code == 400


async def test_a_channel_reads_without_its_secrets_and_keeps_them_on_update(
    client: httpx.AsyncClient, admin_headers: dict[str, str], loopback_allowed: None
) -> None:
    with http_receiver() as receiver:
        body = webhook(receiver.url, headers={"Authorization": "Bearer hidden-token"})
        channel = await create(client, admin_headers, body)
        assert channel["config"] == {
            "url": receiver.url,
            "secret_set": True,
            "header_names": ["Authorization"],
        }
        listed = (await client.get(CHANNELS, headers=admin_headers)).text
        assert SECRET not in listed
        assert "hidden-token" not in listed

        # a new URL, no secret and no headers: both are kept
        moved = receiver.url.replace("/hook", "/moved")
        response = await client.put(
            f"{CHANNELS}/{channel['id']}",
            json={"name": "renamed", "config": {"url": moved}},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["config"]["secret_set"] is True
        assert response.json()["data"]["name"] == "renamed"

        tested = await client.post(f"{CHANNELS}/{channel['id']}/test", headers=admin_headers)

    assert tested.status_code == 200, tested.text
    assert tested.json()["data"]["status"] == "sent"
    [request] = receiver.received
    assert request.path == "/moved"
    assert request.headers["Authorization"] == "Bearer hidden-token"
    assert request.headers["X-Ops-Event"] == "test"
    assert request.headers["X-Ops-Delivery"] == str(tested.json()["data"]["delivery_id"])
    timestamp = request.headers["X-Ops-Timestamp"]
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Ops-Signature"] == f"sha256={mac.hexdigest()}"
    assert request.json()["alert"] is None


async def test_a_failed_test_message_says_why(
    client: httpx.AsyncClient, admin_headers: dict[str, str], loopback_allowed: None
) -> None:
    channel = await create(client, admin_headers, webhook(f"http://127.0.0.1:{free_port()}/hook"))

    response = await client.post(f"{CHANNELS}/{channel['id']}/test", headers=admin_headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "failed"
    assert response.json()["data"]["error"] == "ConnectError: could not connect"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "webhook", "config": {"url": "ftp://example.com/x", "secret": SECRET}}, "url"),
        ({"type": "webhook", "config": {"url": "http://8.8.8.8/x", "secret": "short"}}, "secret"),
        ({"type": "webhook", "config": {"url": "http://8.8.8.8/x"}}, "secret"),
        (
            {
                "type": "webhook",
                "config": {"url": "http://8.8.8.8/x", "secret": SECRET, "headers": {"Host": "a"}},
            },
            "headers",
        ),
        ({"type": "email", "config": {"recipients": []}}, "recipients"),
        ({"type": "email", "config": {"recipients": ["not-an-address"]}}, "recipients.0"),
        ({"type": "email", "config": {"recipients": ["a@example.com"] * 51}}, "recipients"),
        ({"type": "wecom", "config": {"url": "http://8.8.8.8/x", "extra": 1}}, "extra"),
        ({"type": "feishu", "config": {}}, "url"),
    ],
)
async def test_bad_config_is_refused_naming_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post(CHANNELS, json={"name": "bad", **body}, headers=admin_headers)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1001
    assert field_errors(response) == [f"body.config.{field}"]


async def test_an_unknown_type_and_a_taken_name_are_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"name": "x", "type": "sms", "config": {}}
    response = await client.post(CHANNELS, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert field_errors(response) == ["body.type"]

    mail = {"name": "mail", "type": "email", "config": {"recipients": ["a@example.com"]}}
    await create(client, admin_headers, mail)
    again = await client.post(CHANNELS, json=mail, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["code"] == 7102


async def test_delete_and_missing_channels(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    mail = {"name": "mail", "type": "email", "config": {"recipients": ["a@example.com"]}}
    channel = await create(client, admin_headers, mail)
    assert channel["config"] == {"recipients": ["a@example.com"]}

    deleted = await client.delete(f"{CHANNELS}/{channel['id']}", headers=admin_headers)
    assert deleted.status_code == 200

    for method in ("GET", "PUT", "DELETE"):
        body = {"enabled": False} if method == "PUT" else None
        response = await client.request(
            method, f"{CHANNELS}/{channel['id']}", json=body, headers=admin_headers
        )
        assert response.status_code == 404, (method, response.text)
        assert response.json()["code"] == 7101


async def test_only_admins_manage_channels_and_changes_are_audited(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_user(client, admin_headers, "olga", role="operator")
    operator = bearer((await login(client, "olga", "Str0ng-Password"))["token"])
    mail = {"name": "mail", "type": "email", "config": {"recipients": ["a@example.com"]}}
    assert (await client.get(CHANNELS, headers=operator)).status_code == 403
    assert (await client.post(CHANNELS, json=mail, headers=operator)).status_code == 403

    channel = await create(client, admin_headers, mail)
    await client.put(f"{CHANNELS}/{channel['id']}", json={"enabled": False}, headers=admin_headers)
    await client.delete(f"{CHANNELS}/{channel['id']}", headers=admin_headers)

    response = await client.get(
        "/api/v1/system/audit-logs", params={"resource_type": "channel"}, headers=admin_headers
    )
    items = response.json()["data"]["items"]
    refused = [r for r in items if r["status"] == "failed"]
    assert {r["username"] for r in refused} == {"olga"}
    rows = {r["action"]: r for r in items if r["status"] == "success"}
    assert rows["channel.create"]["detail"] == {"name": "mail", "type": "email"}
    assert rows["channel.create"]["resource_id"] == str(channel["id"])
    assert rows["channel.update"]["detail"] == {"enabled": False}
    assert rows["channel.delete"]["status"] == "success"


async def test_everyone_reads_the_notifications_of_an_alert(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str], loopback_allowed: None
) -> None:
    dead = webhook(f"http://127.0.0.1:{free_port()}/hook")
    channel = await create(client, admin_headers, dead)
    async with transaction(stack.runtime.sessions) as session:
        await service.enqueue(session, [notice([channel["id"]], alert_id=41)], utcnow())
    settings = notify(max_attempts=1)
    await service.deliver_due(stack.runtime.sessions, settings)
    await make_user(client, admin_headers, "vera", role="viewer")
    viewer = bearer((await login(client, "vera", "Str0ng-Password"))["token"])

    response = await client.get("/api/v1/alerts/41/notifications", headers=viewer)

    assert response.status_code == 200, response.text
    [item] = response.json()["data"]
    assert item["channel_name"] == "ops-hook"
    assert item["channel_type"] == "webhook"
    assert (item["event"], item["status"], item["attempts"]) == ("firing", "failed", 1)
    assert item["last_error"] == "ConnectError: could not connect"
    assert item["next_attempt_at"] is None
    assert item["created_at"].endswith("Z")
    other = await client.get("/api/v1/alerts/42/notifications", headers=viewer)
    assert other.json()["data"] == []
