"""Alerts, notification channels, configuration and settings in a real browser against a real
Manager, daemon and simulated fleet: an operator acknowledges an alert that fired, a viewer
cannot, a channel's test reaches a local receiver, and a group's configuration is applied by
the simulated daemons."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import poll_until
from tests.manager.notification.receivers import Receiver, http_receiver
from tests.web.conftest import ADMIN_PASSWORD, SIMULATED_GROUP, VIEWER, Fleet, log_in, screenshot
from tests.web.test_console import CJK, settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

OPERATOR = ("duty", "Web-Operator-Passw0rd")
WEBHOOK_SECRET = "web-e2e-webhook-secret-0123"


@pytest.fixture(scope="module")
def firing(fleet: Fleet) -> dict[str, Any]:
    """An alert firing on the real daemon's node: its memory use is always at least 0 %."""
    fleet.api.send(
        "POST",
        "/system/users",
        {"username": OPERATOR[0], "password": OPERATOR[1], "role": "operator", "status": 1},
    )
    rule = fleet.api.send(
        "POST",
        "/alerts/rules",
        {
            "name": "memory watched",
            "metric": "memory_usage",
            "operator": "gte",
            "threshold": 0,
            "duration": 0,
            "severity": "critical",
            "target_type": "node",
            "target_value": [str(fleet.daemon_node_id)],
        },
    )

    def fired() -> dict[str, Any] | None:
        items = fleet.api.get("/alerts", rule_id=rule["id"], status="firing")["items"]
        return items[0] if items else None

    alert: dict[str, Any] = poll_until(
        fired, timeout=60, what="the rule fires on the daemon's node"
    )
    return alert


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


def test_an_operator_acknowledges_an_alert(
    page: Page, fleet: Fleet, firing: dict[str, Any]
) -> None:
    log_in(page, fleet, *OPERATOR, "/alerts?status=firing")
    settled(page)
    row = page.locator(".MuiDataGrid-row", has_text="memory watched")
    expect(row).to_contain_text(fleet.daemon_hostname)
    expect(row.get_by_test_id("alert-status")).to_have_text("告警中")
    row.get_by_role("button", name=f"确认 #{firing['id']}").click()
    expect(row.get_by_test_id("alert-acknowledged")).to_have_text("已确认")
    expect(row.get_by_role("button", name=f"确认 #{firing['id']}")).to_have_count(0)
    stored = fleet.api.get(f"/alerts/{firing['id']}")
    assert stored["acknowledged_at"] is not None
    operator = fleet.api.get("/system/users", keyword=OPERATOR[0])["items"][0]
    assert stored["acknowledged_by"] == operator["id"]

    # Its page says who acknowledged it and lists its notifications (none: no channel).
    row.click()
    page.wait_for_url(f"**/alerts/{firing['id']}")
    expect(
        page.get_by_role("heading", name=f"告警 #{firing['id']} · memory watched")
    ).to_be_visible()
    expect(page.get_by_text(re.compile(rf"用户 #{operator['id']}$"))).to_be_visible()
    expect(page.get_by_role("button", name="确认", exact=True)).to_have_count(0)
    settled(page)
    screenshot(page, "alert-detail.zh-CN")


def test_a_viewer_sees_alerts_but_no_acknowledge_button(
    page: Page, fleet: Fleet, firing: dict[str, Any]
) -> None:
    log_in(page, fleet, *VIEWER, "/")
    expect(page.get_by_role("navigation").get_by_role("link", name="告警中心")).to_be_visible()
    expect(page.get_by_role("navigation").get_by_role("link", name="系统设置")).to_have_count(0)
    # The dashboard's recent alerts open the alert's page.
    settled(page)
    page.get_by_test_id("recent-alerts").get_by_role("link", name="memory watched").first.click()
    page.wait_for_url(re.compile(r"/alerts/\d+$"))
    expect(page.get_by_role("heading", name=re.compile("memory watched"))).to_be_visible()
    expect(page.get_by_role("button", name="确认", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="静默该节点")).to_have_count(0)
    page.goto(f"{fleet.url}/alerts")
    settled(page)
    expect(page.locator(".MuiDataGrid-row").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^确认 #"))).to_have_count(0)
    expect(page.get_by_role("tab", name="通知渠道")).to_have_count(0)


def test_an_admin_adds_a_channel_and_its_test_reaches_the_receiver(
    page: Page, fleet: Fleet, receiver: Receiver
) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/alerts/channels")
    page.get_by_role("button", name="新建渠道").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("名称").fill("browser hook")
    dialog.get_by_label("地址").fill("ftp://example.com/hook")
    dialog.get_by_label("密钥").fill(WEBHOOK_SECRET)
    dialog.get_by_role("button", name="保存").click()
    # Refused by the server, shown beside the field.
    expect(dialog.get_by_text("must be an http:// or https:// URL", exact=False)).to_be_visible()
    dialog.get_by_label("地址").fill(receiver.url)
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("button", name="发送测试 browser hook").click()
    expect(page.get_by_test_id("channel-test-result")).to_have_text(
        "已通过 browser hook 发送测试消息"
    )
    assert receiver.arrived.wait(10)
    assert receiver.received[0].path == "/hook"
    screenshot(page, "alert-channels.zh-CN")


def test_a_group_config_change_is_applied_by_its_daemons(page: Page, fleet: Fleet) -> None:
    node = fleet.api.get("/nodes", group_id=fleet.simulated_group_id, page_size=1)["items"][0]
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/groups")
    page.get_by_role("button", name=f"分组配置 {SIMULATED_GROUP}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="添加键").click()
    dialog.get_by_role("textbox", name="键 1").fill("heartbeat_interval")
    dialog.get_by_role("textbox", name="值 heartbeat_interval").fill("0")
    dialog.get_by_role("button", name="保存").click()
    # The Manager checks known keys: the message sits on the row.
    expect(
        dialog.get_by_text(re.compile(r"must be a whole number of seconds from 1"))
    ).to_be_visible()
    dialog.get_by_role("textbox", name="值 heartbeat_interval").fill("1")
    dialog.get_by_role("button", name="添加键").click()
    dialog.get_by_role("textbox", name="键 2").fill("log.level")
    dialog.get_by_role("textbox", name="值 log.level").fill("info")
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert fleet.api.get(f"/groups/{fleet.simulated_group_id}/config")["config"] == {
        "heartbeat_interval": "1",
        "log.level": "info",
    }

    # A node of the group shows where its keys come from, and that its daemon applied them.
    page.goto(f"{fleet.url}/nodes/{node['id']}")
    panel = page.get_by_test_id("node-config")
    expect(panel.get_by_role("row", name=re.compile(r"^log\.level"))).to_contain_text(
        f"分组 {SIMULATED_GROUP}"
    )
    expect(panel.get_by_test_id("config-delivery")).to_contain_text(
        "守护进程已应用", timeout=30_000
    )
    delivery = fleet.api.get(f"/nodes/{node['id']}/config/effective")["delivery"]
    assert (delivery["state"], delivery["current"]) == ("done", True)
    screenshot(page, "node-config.zh-CN")


def test_the_alert_and_settings_pages_in_both_languages(
    page: Page, fleet: Fleet, firing: dict[str, Any]
) -> None:
    pages = {
        "alerts": "/alerts",
        "alert-rules": "/alerts/rules",
        "alert-silences": "/alerts/silences?active=false",
        "alert-channels": "/alerts/channels",
        "alert-detail": f"/alerts/{firing['id']}",
        "settings": "/settings",
    }
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/settings")
    settled(page)
    own = fleet.api.get("/system/settings")["package_keys"][0]["fingerprint"]
    expect(page.get_by_test_id("settings-keys")).to_contain_text(own)
    # Silence the alert's node from its page: the list then shows it silenced.
    page.goto(f"{fleet.url}/alerts/{firing['id']}")
    page.get_by_role("button", name="静默该节点").click()
    page.get_by_role("dialog").get_by_label("原因").fill("browser test")
    page.get_by_role("dialog").get_by_role("button", name="静默").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("已静默").first).to_be_visible()
    for name, path in pages.items():
        page.goto(f"{fleet.url}{path}")
        settled(page)
        assert CJK.search(page.inner_text("body")), f"{name} shows no Chinese in zh-CN"
        screenshot(page, f"{name}.zh-CN")

    page.get_by_role("button", name="语言").click()
    page.get_by_role("menuitem", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    for name, path in pages.items():
        page.goto(f"{fleet.url}{path}")
        settled(page)
        text = page.inner_text("body")
        assert not CJK.search(text), f"{name} still shows Chinese in en: {CJK.findall(text)[:10]}"
        screenshot(page, f"{name}.en")
    # Usable at 1024 px: the alert list keeps its actions in view.
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{fleet.url}/alerts")
    settled(page)
    expect(page.get_by_role("tab", name="Notification channels")).to_be_visible()
    screenshot(page, "alerts.en.1024")
