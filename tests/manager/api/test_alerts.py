"""Alerting over REST: rules (admin), alerts (everyone reads, editors acknowledge) and
silences (editors), with bad input refused naming the field, and every change audited."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from opscaffold.manager.kit.clock import rfc3339, utcnow
from opscaffold.manager.models import Alert, AuditLog
from tests.manager import factories as f
from tests.manager.conftest import Stack, bearer, login, make_user

RULES = "/api/v1/alerts/rules"
ALERTS = "/api/v1/alerts"
SILENCES = "/api/v1/alerts/silences"


def cpu_rule(**fields: Any) -> dict[str, Any]:
    return {
        "name": "cpu high",
        "metric": "cpu_usage",
        "operator": "gt",
        "threshold": 90,
        "duration": 120,
        "severity": "critical",
        **fields,
    }


async def headers_of(client: httpx.AsyncClient, admin: dict[str, str], role: str) -> dict[str, str]:
    await make_user(client, admin, f"u-{role}", role=role)
    return bearer((await login(client, f"u-{role}", "Str0ng-Password"))["token"])


async def audit_actions(stack: Stack) -> list[tuple[str, str | None]]:
    async with stack.runtime.sessions() as session:
        rows = await session.execute(
            sa.select(AuditLog.action, AuditLog.resource_id).order_by(AuditLog.id)
        )
        return [(a, r) for a, r in rows if a.startswith("alert")]


async def add_alert(
    stack: Stack,
    rule_id: int,
    node_id: int,
    *,
    fired_at: datetime,
    status: str = "firing",
    severity: str = "warning",
) -> int:
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(
            sa.insert(Alert).values(
                rule_id=rule_id,
                node_id=node_id,
                metric="cpu_usage",
                current_value=95.5,
                threshold=90,
                severity=severity,
                status=status,
                fired_at=fired_at,
                resolved_at=fired_at + timedelta(minutes=1) if status == "resolved" else None,
                open_key=f"{rule_id}:{node_id}" if status == "firing" else None,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def field_error(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 1001
    assert field in response.text, response.text


# -- rules ------------------------------------------------------------------------------------
async def add_channel(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> int:
    body = {"name": name, "type": "email", "config": {"recipients": ["oncall@example.com"]}}
    response = await client.post("/api/v1/alerts/channels", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def test_a_rule_naming_a_channel_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await add_channel(client, admin_headers, "ops-mail")
    for missing in ("nobody", 999999):
        body = cpu_rule(notification_channels=["ops-mail", missing])
        response = await client.post(RULES, json=body, headers=admin_headers)
        assert (response.status_code, response.json()["code"]) == (400, 1001)
        assert "notification_channels.1" in response.json()["message"], response.text


async def test_an_admin_creates_reads_lists_changes_and_deletes_a_rule_and_each_is_audited(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    group = await f.add_group(stack, "web")
    mail, hook = (
        await add_channel(client, admin_headers, "ops-mail"),
        await add_channel(client, admin_headers, "ops-mail-2"),
    )
    created = await client.post(
        RULES,
        json=cpu_rule(
            target_type="group",
            target_value=[str(group)],
            notification_channels=["ops-mail", hook, mail],  # by name or id, each once
            keep_firing_for=60,
        ),
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    rule = created.json()["data"]
    assert rule["metric"] == "cpu_usage"
    assert rule["operator"] == "gt"
    assert rule["threshold"] == 90.0
    assert rule["duration"] == 120
    assert rule["keep_firing_for"] == 60
    assert rule["severity"] == "critical"
    assert rule["target_type"] == "group"
    assert rule["target_value"] == [str(group)]
    assert rule["notification_channels"] == [mail, hook]
    assert rule["enabled"] is True

    shown = await client.get(f"{RULES}/{rule['id']}", headers=admin_headers)
    assert shown.json()["data"] == rule
    listed = await client.get(RULES, headers=admin_headers)
    assert listed.json()["data"]["total"] == 1

    changed = await client.put(
        f"{RULES}/{rule['id']}",
        json={"threshold": 80.5, "enabled": False, "target_type": "all"},
        headers=admin_headers,
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert data["threshold"] == 80.5
    assert data["enabled"] is False
    assert data["target_type"] == "all"
    assert data["target_value"] == []
    assert data["name"] == "cpu high"  # untouched fields stay

    deleted = await client.delete(f"{RULES}/{rule['id']}", headers=admin_headers)
    assert deleted.status_code == 200
    gone = await client.get(f"{RULES}/{rule['id']}", headers=admin_headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == 7001
    rid = str(rule["id"])
    assert await audit_actions(stack) == [
        ("alert_rule.create", rid),
        ("alert_rule.update", rid),
        ("alert_rule.delete", rid),
    ]


async def test_boolean_rules_take_no_operator_or_threshold(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for metric in ("node_offline", "agent_not_running"):
        refused = await client.post(
            RULES,
            json={"name": "x", "metric": metric, "threshold": 1},
            headers=admin_headers,
        )
        field_error(refused, "threshold")
        refused = await client.post(
            RULES, json={"name": "x", "metric": metric, "operator": "gt"}, headers=admin_headers
        )
        field_error(refused, "operator")
        created = await client.post(
            RULES, json={"name": "x", "metric": metric, "duration": 0}, headers=admin_headers
        )
        assert created.status_code == 201, created.text
        rule = created.json()["data"]
        assert rule["operator"] is None
        assert rule["threshold"] is None

    # switching a boolean rule to a metric needs both; switching back drops them
    rule_id = rule["id"]
    half = await client.put(
        f"{RULES}/{rule_id}", json={"metric": "cpu_usage", "operator": "gt"}, headers=admin_headers
    )
    field_error(half, "threshold")
    whole = await client.put(
        f"{RULES}/{rule_id}",
        json={"metric": "memory_used", "operator": "gte", "threshold": 8_000_000_000},
        headers=admin_headers,
    )
    assert whole.status_code == 200, whole.text
    assert whole.json()["data"]["threshold"] == 8_000_000_000  # past DECIMAL(10,2)
    back = await client.put(
        f"{RULES}/{rule_id}", json={"metric": "node_offline"}, headers=admin_headers
    )
    assert back.status_code == 200, back.text
    assert back.json()["data"]["operator"] is None


async def test_bad_rules_are_refused_naming_the_field(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (cpu_rule(metric="cpu_temperature"), "metric"),
        (cpu_rule(duration=-1), "duration"),
        (cpu_rule(keep_firing_for=-5), "keep_firing_for"),
        (cpu_rule(operator="between"), "operator"),
        (cpu_rule(threshold=None), "threshold"),
        (cpu_rule(threshold="NaN"), "threshold"),
        (cpu_rule(threshold=1e19), "threshold"),
        (cpu_rule(severity="fatal"), "severity"),
        (cpu_rule(target_type="label"), "target_type"),
        (cpu_rule(target_type="group"), "target_value"),
        (cpu_rule(target_type="node", target_value=["web-1"]), "target_value"),
        (cpu_rule(target_value=["1"]), "target_value"),
        (cpu_rule(notification_channels=[{"email": "x"}]), "notification_channels"),
        (cpu_rule(notification_channels=[f"c{i}" for i in range(21)]), "notification_channels"),
        (cpu_rule(name=""), "name"),
        (cpu_rule(extra=1), "extra"),
    ]
    for body, field in cases:
        field_error(await client.post(RULES, json=body, headers=admin_headers), field)
    missing_group = await client.post(
        RULES, json=cpu_rule(target_type="group", target_value=["999"]), headers=admin_headers
    )
    assert missing_group.status_code == 404
    assert missing_group.json()["code"] == 2004
    assert "target_value" in missing_group.json()["message"]
    missing_node = await client.post(
        RULES, json=cpu_rule(target_type="node", target_value=["999"]), headers=admin_headers
    )
    assert missing_node.status_code == 404
    assert missing_node.json()["code"] == 2001

    created = await client.post(RULES, json=cpu_rule(), headers=admin_headers)
    rule_id = created.json()["data"]["id"]
    field_error(
        await client.put(f"{RULES}/{rule_id}", json={"duration": None}, headers=admin_headers),
        "duration",
    )
    field_error(
        await client.put(f"{RULES}/{rule_id}", json={"metric": "load"}, headers=admin_headers),
        "metric",
    )
    missing = await client.put(f"{RULES}/999999", json={"name": "y"}, headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 7001
    unchanged = await client.get(f"{RULES}/{rule_id}", headers=admin_headers)
    assert unchanged.json()["data"]["duration"] == 120


async def test_only_admins_manage_rules_and_everyone_reads_them(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await client.post(RULES, json=cpu_rule(), headers=admin_headers)
    rule_id = created.json()["data"]["id"]
    for role in ("operator", "viewer"):
        headers = await headers_of(client, admin_headers, role)
        assert (await client.get(RULES, headers=headers)).status_code == 200
        assert (await client.get(f"{RULES}/{rule_id}", headers=headers)).status_code == 200
        refused = [
            await client.post(RULES, json=cpu_rule(), headers=headers),
            await client.put(f"{RULES}/{rule_id}", json={"name": "z"}, headers=headers),
            await client.delete(f"{RULES}/{rule_id}", headers=headers),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403]
        assert {r.json()["code"] for r in refused} == {1003}


# -- alerts -----------------------------------------------------------------------------------
async def test_alerts_are_listed_newest_first_with_filters_and_pages(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rule_id = (await client.post(RULES, json=cpu_rule(), headers=admin_headers)).json()["data"][
        "id"
    ]
    web, db = await f.add_node(stack, "web-1"), await f.add_node(stack, "db-1")
    t0 = utcnow() - timedelta(hours=3)
    first = await add_alert(stack, rule_id, web, fired_at=t0, status="resolved")
    second = await add_alert(stack, rule_id, db, fired_at=t0 + timedelta(hours=1))
    third = await add_alert(
        stack, rule_id + 1, web, fired_at=t0 + timedelta(hours=2), severity="critical"
    )

    async def ids(**params: Any) -> list[int]:
        response = await client.get(ALERTS, params=params, headers=admin_headers)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["data"]["items"]]

    assert await ids() == [third, second, first]
    assert await ids(status="firing") == [third, second]
    assert await ids(status="resolved") == [first]
    assert await ids(severity="critical") == [third]
    assert await ids(node_id=web) == [third, first]
    assert await ids(rule_id=rule_id) == [second, first]
    since = rfc3339(t0 + timedelta(minutes=30))
    until = rfc3339(t0 + timedelta(hours=2))
    assert await ids(since=since) == [third, second]
    assert await ids(since=since, until=until) == [second]
    assert await ids(page=2, page_size=2) == [first]

    page = (await client.get(ALERTS, params={"page_size": 1}, headers=admin_headers)).json()
    assert page["data"]["total"] == 3
    shown = page["data"]["items"][0]
    assert shown["hostname"] == "web-1"
    assert shown["rule_name"] is None
    assert shown["silenced"] is False
    assert shown["silence_ids"] == []
    one = await client.get(f"{ALERTS}/{second}", headers=admin_headers)
    data = one.json()["data"]
    assert data["rule_name"] == "cpu high"
    assert data["status"] == "firing"
    assert data["current_value"] == 95.5
    assert data["threshold"] == 90.0

    bad: list[tuple[dict[str, str | None], str]] = [
        ({"status": "open"}, "status"),
        ({"severity": "fatal"}, "severity"),
        ({"node_id": "0"}, "node_id"),
        ({"since": "yesterday"}, "since"),
        ({"page_size": "101"}, "page_size"),
        ({"since": until, "until": since}, "until"),
    ]
    for params, field in bad:
        field_error(await client.get(ALERTS, params=params, headers=admin_headers), field)
    missing = await client.get(f"{ALERTS}/999999", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 7002


async def test_editors_acknowledge_once_and_viewers_may_not(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node = await f.add_node(stack, "web-1")
    alert_id = await add_alert(stack, 1, node, fired_at=utcnow())
    viewer = await headers_of(client, admin_headers, "viewer")
    operator = await headers_of(client, admin_headers, "operator")

    refused = await client.post(f"{ALERTS}/{alert_id}/acknowledge", headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["code"] == 1003
    assert (await client.get(f"{ALERTS}/{alert_id}", headers=viewer)).status_code == 200

    done = await client.post(f"{ALERTS}/{alert_id}/acknowledge", headers=operator)
    assert done.status_code == 200, done.text
    acked = done.json()["data"]
    me = (await client.get("/api/v1/auth/me", headers=operator)).json()["data"]
    assert acked["acknowledged_by"] == me["id"]
    assert acked["acknowledged_at"] is not None
    again = await client.post(f"{ALERTS}/{alert_id}/acknowledge", headers=admin_headers)
    assert again.status_code == 200
    assert again.json()["data"]["acknowledged_by"] == me["id"]  # the first one stays
    missing = await client.post(f"{ALERTS}/999999/acknowledge", headers=operator)
    assert missing.status_code == 404
    assert missing.json()["code"] == 7002
    # the viewer's refusal is audited too
    assert await audit_actions(stack) == [("alert.acknowledge", str(alert_id))] * 3 + [
        ("alert.acknowledge", "999999")
    ]


# -- silences ---------------------------------------------------------------------------------
async def test_silences_mark_the_alerts_they_cover_until_they_end(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    parent = await f.add_group(stack, "prod")
    child = await f.add_group(stack, "prod-web", parent_id=parent)
    in_child = await f.add_node(stack, "web-1", group_id=child)
    tagged = await f.add_node(stack, "db-1", tags=["Database"])
    other = await f.add_node(stack, "misc-1")
    rule_id = (await client.post(RULES, json=cpu_rule(), headers=admin_headers)).json()["data"][
        "id"
    ]
    a_child = await add_alert(stack, rule_id, in_child, fired_at=utcnow())
    a_tagged = await add_alert(stack, rule_id, tagged, fired_at=utcnow())
    a_other = await add_alert(stack, rule_id + 1, other, fired_at=utcnow())
    operator = await headers_of(client, admin_headers, "operator")
    ends = rfc3339(utcnow() + timedelta(hours=1))

    async def silenced() -> dict[int, list[int]]:
        items = (await client.get(ALERTS, headers=admin_headers)).json()["data"]["items"]
        assert all(a["silenced"] == bool(a["silence_ids"]) for a in items)
        return {a["id"]: a["silence_ids"] for a in items}

    async def silence(target_type: str, value: str) -> int:
        body = {"target_type": target_type, "target_value": value, "reason": "maintenance"}
        response = await client.post(SILENCES, json=body | {"ends_at": ends}, headers=operator)
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        assert data["active"] is True
        assert data["reason"] == "maintenance"
        return int(data["id"])

    assert await silenced() == {a_child: [], a_tagged: [], a_other: []}
    by_group = await silence("group", str(parent))  # covers its sub-groups
    by_tag = await silence("tag", "database")  # tags match ignoring case
    assert await silenced() == {a_child: [by_group], a_tagged: [by_tag], a_other: []}
    by_rule = await silence("rule", str(rule_id))
    by_node = await silence("node", str(other))
    assert await silenced() == {
        a_child: [by_group, by_rule],
        a_tagged: [by_tag, by_rule],
        a_other: [by_node],
    }
    one = await client.get(f"{ALERTS}/{a_other}", headers=admin_headers)
    assert one.json()["data"]["silenced"] is True

    # ended early by an update, or deleted: it covers nothing any more
    now = rfc3339(utcnow())
    ended = await client.put(f"{SILENCES}/{by_node}", json={"ends_at": now}, headers=operator)
    assert ended.status_code == 200, ended.text
    assert ended.json()["data"]["active"] is False
    assert (await client.delete(f"{SILENCES}/{by_rule}", headers=operator)).status_code == 200
    assert await silenced() == {a_child: [by_group], a_tagged: [by_tag], a_other: []}

    # one that starts later covers nothing yet
    later = {
        "target_type": "node",
        "target_value": str(other),
        "reason": "tonight",
        "starts_at": rfc3339(utcnow() + timedelta(minutes=30)),
        "ends_at": ends,
    }
    scheduled = await client.post(SILENCES, json=later, headers=operator)
    assert scheduled.status_code == 201, scheduled.text
    assert scheduled.json()["data"]["active"] is False
    assert await silenced() == {a_child: [by_group], a_tagged: [by_tag], a_other: []}

    everything = (await client.get(SILENCES, headers=admin_headers)).json()["data"]
    assert everything["total"] == 4
    active = await client.get(SILENCES, params={"active": "true"}, headers=admin_headers)
    assert {s["id"] for s in active.json()["data"]["items"]} == {by_group, by_tag}
    shown = await client.get(f"{SILENCES}/{by_tag}", headers=admin_headers)
    assert shown.json()["data"]["target_value"] == "database"
    actions = [a for a, _ in await audit_actions(stack) if a.startswith("alert_silence")]
    assert actions == ["alert_silence.create"] * 4 + [
        "alert_silence.update",
        "alert_silence.delete",
        "alert_silence.create",
    ]


async def test_bad_silences_are_refused_and_viewers_may_not_silence(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    later = rfc3339(utcnow() + timedelta(hours=1))
    past = rfc3339(utcnow() - timedelta(hours=1))
    base = {"target_type": "node", "target_value": "1", "reason": "r", "ends_at": later}
    node = await f.add_node(stack, "web-1")
    base["target_value"] = str(node)
    for body, field in [
        (base | {"ends_at": past}, "ends_at"),
        (base | {"starts_at": later, "ends_at": later}, "ends_at"),
        (base | {"reason": ""}, "reason"),
        (base | {"target_type": "label"}, "target_type"),
        (base | {"target_value": "web-1"}, "target_value"),
        (base | {"ends_at": "soon"}, "ends_at"),
        ({k: v for k, v in base.items() if k != "ends_at"}, "ends_at"),
    ]:
        field_error(await client.post(SILENCES, json=body, headers=admin_headers), field)
    for target_type, code in [("node", 2001), ("group", 2004), ("rule", 7001)]:
        missing = await client.post(
            SILENCES,
            json=base | {"target_type": target_type, "target_value": "999"},
            headers=admin_headers,
        )
        assert (missing.status_code, missing.json()["code"]) == (404, code), missing.text
    viewer = await headers_of(client, admin_headers, "viewer")
    refused = await client.post(SILENCES, json=base, headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["code"] == 1003
    assert (await client.get(SILENCES, headers=viewer)).status_code == 200
    created = await client.post(SILENCES, json=base, headers=admin_headers)
    silence_id = created.json()["data"]["id"]
    field_error(
        await client.put(f"{SILENCES}/{silence_id}", json={"ends_at": past}, headers=admin_headers),
        "ends_at",
    )
    assert (
        await client.put(f"{SILENCES}/{silence_id}", json={}, headers=viewer)
    ).status_code == 403
    missing = await client.delete(f"{SILENCES}/999999", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 7003
