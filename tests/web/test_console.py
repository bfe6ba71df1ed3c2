"""The flows an operator performs in the web console, in a real browser against real processes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers import poll_until
from tests.web.conftest import (
    ADMIN_PASSWORD,
    FLEET_NODES,
    SIMULATED_GROUP,
    VIEWER,
    Fleet,
    log_in,
    screenshot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CJK = re.compile(r"[\u4e00-\u9fff]")
PAGES = {
    "dashboard": "/",
    "nodes": "/nodes",
    "groups": "/groups",
    "versions": "/versions",
    "rollouts": "/rollouts",
    "users": "/users",
    "audit-logs": "/audit-logs",
    "enrollment-tokens": "/enrollment-tokens",
}


def settled(page: Page) -> None:
    """No request in flight and no loading indicator left: the page shows its data (or its
    empty state). Loading indicators have no value; the progress bars of rollouts have one."""
    page.wait_for_load_state("networkidle")
    expect(page.locator("[role=progressbar]:not([aria-valuenow])")).to_have_count(0)


def test_login_lands_on_the_dashboard_with_the_apis_counts(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD)
    assert urlparse(page.url).path == "/"
    expect(page.get_by_role("heading", name="仪表盘")).to_be_visible()
    settled(page)
    cards = {
        "count-total": "total_nodes",
        "count-online": "online_nodes",
        "count-agents": "running_agents",
        "count-alerts": "active_alerts",
    }

    def same_as_the_api() -> bool:
        # The figures are cached for a few seconds: compare with the API's, reloading the page
        # should the two reads fall on either side of a recomputation.
        figures = fleet.api.get("/system/dashboard")
        shown = {test_id: page.get_by_test_id(test_id).inner_text() for test_id in cards}
        if shown == {test_id: str(figures[field]) for test_id, field in cards.items()}:
            return True
        page.reload()
        settled(page)
        return False

    poll_until(same_as_the_api, timeout=30, what="the dashboard shows the API's figures")
    total = fleet.api.get("/nodes", page_size=1)["total"]
    expect(page.get_by_test_id("count-total")).to_have_text(str(total))
    assert total >= 13
    online = fleet.api.get("/nodes", status="online", page_size=1)["total"]
    expect(page.get_by_test_id("count-online")).to_have_text(str(online))
    expect(page.get_by_test_id("generated-at")).to_contain_text("数据时间")
    # The charts are drawn: three distributions and the trend.
    for test_id in ("status-distribution", "agent-versions", "daemon-versions"):
        expect(page.get_by_test_id(test_id).locator("svg path").first).to_be_attached()


def test_a_wrong_password_is_refused_with_a_message(page: Page, fleet: Fleet) -> None:
    page.goto(f"{fleet.url}/login")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill("not-the-password")
    page.locator("button[type=submit]").click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    assert urlparse(page.url).path == "/login"


def test_find_a_node_by_label_and_read_its_charts(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/nodes")
    settled(page)
    page.get_by_test_id("filter-labels").fill("role=web-console")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r"label=role%3Dweb-console"))
    rows = page.locator(".MuiDataGrid-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(fleet.daemon_hostname)
    # The filter lives in the URL: a reload (or a shared link) shows the same list.
    page.reload()
    expect(page.locator(".MuiDataGrid-row")).to_have_count(1)
    expect(page.get_by_test_id("filter-labels")).to_have_value("role=web-console")

    page.locator(".MuiDataGrid-row").first.click()
    page.wait_for_url(f"**/nodes/{fleet.daemon_node_id}")
    expect(page.get_by_role("heading", name=fleet.daemon_hostname)).to_be_visible()
    charts = page.get_by_test_id("metric-charts")
    expect(charts).to_be_visible()
    expect(
        charts.locator("svg path.MuiLineChart-line, svg .MuiLineElement-root").first
    ).to_be_attached()
    # Another range queries the API again and still draws.
    with page.expect_response(re.compile(r"/nodes/\d+/metrics\?start=")) as response:
        page.get_by_role("button", name="6小时").click()
    assert response.value.status == 200
    expect(page.get_by_test_id("metric-charts")).to_be_visible()
    screenshot(page, "node-detail.zh-CN")

    # Back keeps the filter.
    page.get_by_role("button", name="返回节点列表").click()
    assert parse_qs(urlparse(page.url).query)["label"] == ["role=web-console"]


def test_status_filter_and_paging_are_served_by_the_api(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/nodes?status=online&page_size=10")
    settled(page)
    expect(page.locator(".MuiDataGrid-row")).to_have_count(10)
    online = fleet.api.get("/nodes", status="online", page_size=1)["total"]
    expect(page.locator(".MuiTablePagination-displayedRows")).to_contain_text(str(online))
    page.get_by_role("button", name=re.compile("下一页|next page", re.I)).click()
    page.wait_for_url(re.compile(r"page=2"))
    expect(page.locator(".MuiDataGrid-row")).to_have_count(online - 10)


def test_an_operator_sends_a_ping_and_follows_it(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, f"/nodes/{fleet.daemon_node_id}")
    page.get_by_role("button", name="连通性检测").click()
    expect(page.get_by_test_id("command-state")).to_contain_text("已完成", timeout=30_000)


def test_a_viewer_sees_no_admin_actions(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, *VIEWER)
    settled(page)
    menu = page.get_by_role("navigation")
    expect(menu.get_by_role("link")).to_have_text(
        ["仪表盘", "节点管理", "节点分组", "版本管理", "发布记录", "任务", "告警中心"]
    )
    page.goto(f"{fleet.url}/nodes/{fleet.daemon_node_id}")
    expect(page.get_by_test_id("metric-charts")).to_be_visible()
    expect(page.get_by_role("button", name="连通性检测")).to_have_count(0)
    expect(page.get_by_role("button", name="删除节点")).to_have_count(0)
    expect(page.get_by_role("button", name="编辑", exact=True)).to_have_count(0)
    page.goto(f"{fleet.url}/groups")
    expect(page.get_by_text("web-frontends")).to_be_visible()
    expect(page.get_by_role("button", name="新建分组")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("编辑分组"))).to_have_count(0)
    page.goto(f"{fleet.url}/versions")
    settled(page)
    expect(page.get_by_role("button", name="上传版本")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(部署|删除版本) "))).to_have_count(0)
    page.goto(f"{fleet.url}/users")
    expect(page.get_by_text("您的角色无权查看此页面")).to_be_visible()


def test_an_admin_manages_groups(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/groups")
    page.get_by_role("button", name="新建分组").click()
    page.get_by_label("名称").fill("edge")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("link", name="edge")).to_be_visible()
    page.get_by_role("button", name="编辑分组 edge").click()
    page.get_by_label("名称").fill("edge-east")
    page.get_by_label("上级分组").click()
    page.get_by_role("option", name="web-frontends").click()
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("link", name="edge-east")).to_be_visible()
    groups = {g["name"]: g for g in fleet.api.get("/groups")}
    assert groups["edge-east"]["parent_id"] == groups["web-frontends"]["id"]
    page.get_by_role("button", name="删除分组 edge-east").click()
    page.get_by_role("dialog").get_by_role("button", name="删除分组").click()
    expect(page.get_by_role("link", name="edge-east")).to_have_count(0)
    assert "edge-east" not in {g["name"] for g in fleet.api.get("/groups")}


def test_an_expired_token_is_refreshed_then_a_dead_session_returns_to_login(
    page: Page, fleet: Fleet
) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/nodes")
    settled(page)

    def stored() -> dict[str, object]:
        raw = page.evaluate("localStorage.getItem('ops-auth')")
        state: dict[str, object] = json.loads(raw)["state"]
        return state

    # An access token the server refuses: the client refreshes once and carries on.
    before = stored()
    page.evaluate(
        """() => {
          const saved = JSON.parse(localStorage.getItem('ops-auth'));
          saved.state.token = 'expired.' + saved.state.token;
          localStorage.setItem('ops-auth', JSON.stringify(saved));
        }"""
    )
    with page.expect_response("**/api/v1/auth/refresh") as refresh:
        page.reload()
    assert refresh.value.status == 200
    expect(page.locator(".MuiDataGrid-row").first).to_be_visible()
    after = stored()
    assert after["token"] != before["token"]
    assert after["refreshToken"] != before["refreshToken"]

    # The session ended elsewhere (logout): the next call fails, the refresh too, so to the
    # login page, and back to where the user was after signing in again.
    page.evaluate(
        """async () => {
          const saved = JSON.parse(localStorage.getItem('ops-auth'));
          await fetch('/api/v1/auth/logout', {method: 'POST',
            headers: {Authorization: 'Bearer ' + saved.state.token}});
        }"""
    )
    page.goto(f"{fleet.url}/nodes?status=online")
    page.wait_for_url(re.compile(r"/login\?next=%2Fnodes%3Fstatus%3Donline"))
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(ADMIN_PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/nodes\?status=online$"))


def test_upload_and_deploy_a_version_to_the_simulated_fleet(
    page: Page, fleet: Fleet, tmp_path: Path
) -> None:
    package = tmp_path / "agent-9.0.0.tar.gz"
    package.write_bytes(b"simulated nodes download nothing" * 4096)
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/versions")
    settled(page)

    # Upload: the Manager checks and signs the package; the list shows it.
    page.get_by_role("button", name="上传版本").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("upload-version").fill("9.0.0")
    dialog.get_by_label("发布说明").fill("from the browser test")
    dialog.get_by_test_id("upload-file").set_input_files(str(package))
    expect(dialog.get_by_test_id("upload-file-name")).to_contain_text("agent-9.0.0.tar.gz")
    screenshot(page, "version-upload.zh-CN")
    dialog.get_by_role("button", name="上传", exact=True).click()
    expect(page.get_by_text("已上传 agent 9.0.0")).to_be_visible()
    version = fleet.api.get("/versions", component="agent")["items"][0]
    assert (version["version"], version["os"], version["arch"]) == ("9.0.0", "linux", "amd64")
    assert version["file_size"] == package.stat().st_size

    # A second upload of the same version is refused with the API's message.
    page.get_by_role("button", name="上传版本").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("upload-version").fill("9.0.0")
    dialog.get_by_test_id("upload-file").set_input_files(str(package))
    dialog.get_by_role("button", name="上传", exact=True).click()
    expect(dialog.get_by_test_id("upload-error")).to_contain_text("9.0.0")
    dialog.get_by_role("button", name="取消").click()

    # Deploy to the simulated nodes' group, in waves of 5, after reading the dry run's plan.
    page.get_by_role("button", name="部署 agent 9.0.0").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox", name="目标").click()
    page.get_by_role("option", name="分组").click()
    dialog.get_by_role("combobox", name="分组", exact=True).click()
    page.get_by_role("option", name=SIMULATED_GROUP).click()
    page.keyboard.press("Escape")
    dialog.get_by_role("combobox", name="策略").click()
    page.get_by_role("option", name="滚动").click()
    dialog.get_by_label("批次大小").fill("5")
    dialog.get_by_role("button", name="预览计划").click()
    plan = dialog.get_by_test_id("deploy-plan")
    expect(plan).to_contain_text(f"将更新 {FLEET_NODES} 个节点，共 3 批")
    expect(plan.get_by_test_id("deploy-wave")).to_have_text(
        [
            re.compile(r"^第 1 批：5 个节点"),
            re.compile(r"^第 2 批：5 个节点"),
            re.compile(r"^第 3 批：2 个节点"),
        ]
    )
    assert fleet.api.get("/updates")["total"] == 0  # a dry run starts nothing
    screenshot(page, "deploy-plan.zh-CN")
    dialog.get_by_role("button", name="开始部署").click()

    # The rollout's page follows it to the end.
    page.wait_for_url(re.compile(r"/rollouts/[0-9a-f-]{36}$"))
    batch_id = urlparse(page.url).path.rsplit("/", 1)[1]
    expect(page.get_by_test_id("rollout-status")).to_have_text("已完成", timeout=90_000)
    expect(page.get_by_test_id("rollout-progress")).to_contain_text(
        f"成功 {FLEET_NODES} · 失败 0 · 未完成 0 / 共 {FLEET_NODES}"
    )
    status = fleet.api.get(f"/updates/{batch_id}/status")
    assert (status["status"], status["success"], status["total"]) == (
        "completed",
        FLEET_NODES,
        FLEET_NODES,
    )
    # One row per node (the grid draws only the rows in view; its footer counts them all).
    expect(page.locator(".MuiTablePagination-displayedRows")).to_have_text(
        re.compile(rf"\b{FLEET_NODES}$")
    )
    screenshot(page, "rollout-detail.zh-CN")

    # The rollouts list counts it; the real daemon was not in the target.
    page.get_by_role("link", name="返回发布记录").click()
    row = page.locator(".MuiDataGrid-row").first
    expect(row).to_contain_text("agent 9.0.0")
    expect(row).to_contain_text(f"成功 {FLEET_NODES} · 失败 0")
    daemon_agent = fleet.api.get(f"/nodes/{fleet.daemon_node_id}/agent")
    assert daemon_agent is None or daemon_agent["version"] != "9.0.0"

    # A node's page lists the update in its history and links back to the rollout.
    node = fleet.api.get("/nodes", group_id=fleet.simulated_group_id, page_size=1)["items"][0]
    page.goto(f"{fleet.url}/nodes/{node['id']}")
    history = page.get_by_test_id("update-history")
    expect(history).to_contain_text("→ 9.0.0")
    expect(page.get_by_test_id("node-timeline")).to_contain_text("9.0.0")
    history.get_by_role("link", name=batch_id[:8]).click()
    page.wait_for_url(f"**/rollouts/{batch_id}")

    # The same pages in English.
    page.get_by_role("button", name="语言").click()
    page.get_by_role("menuitem", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()  # the language menu's text leaves with it
    expect(page.get_by_test_id("rollout-status")).to_have_text("Completed")
    settled(page)
    assert not CJK.search(page.inner_text("body"))
    screenshot(page, "rollout-detail.en")
    page.goto(f"{fleet.url}/nodes/{node['id']}")
    expect(page.get_by_test_id("update-history")).to_contain_text("Succeeded")
    settled(page)
    assert not CJK.search(page.inner_text("body"))
    screenshot(page, "node-updates.en")
    page.goto(f"{fleet.url}/versions")
    page.get_by_role("button", name="Deploy agent 9.0.0").click()
    page.get_by_role("dialog").get_by_role("button", name="Preview plan").click()
    # Every node already runs 9.0.0 or is the real daemon: the API says why none can take it,
    # or the plan shows the daemon alone with the others as ineligible.
    expect(
        page.get_by_test_id("deploy-plan").or_(page.get_by_test_id("deploy-error"))
    ).to_be_visible()
    assert not CJK.search(page.inner_text("body"))
    screenshot(page, "deploy-plan.en")


def test_pause_resume_and_cancel_a_rollout_from_its_page(
    page: Page, fleet: Fleet, tmp_path: Path
) -> None:
    package = tmp_path / "daemon-9.5.0.tar.gz"
    package.write_bytes(b"another package" * 1024)
    fields = {"component": "daemon", "version": "9.5.0", "os": "linux", "arch": "amd64"}
    with package.open("rb") as file:
        uploaded = httpx.post(
            f"{fleet.api.base}/versions",
            data=fields,
            files={"file": (package.name, file, "application/octet-stream")},
            headers=fleet.api.headers,
        )
    uploaded.raise_for_status()
    # A daemon canary that bakes for long: the rollout stays running while the page drives
    # it (a daemon package, so the agent deploy of another test is not in its way).
    plan = fleet.api.send(
        "POST",
        "/updates/deploy",
        {
            "component": "daemon",
            "version_id": uploaded.json()["data"]["id"],
            "target_type": "group",
            "target_value": [str(fleet.simulated_group_id)],
            "strategy": "canary",
            "canary_size": 1,
            "bake_seconds": 3600,
            "batch_size": 5,
        },
    )
    batch_id = plan["batch_id"]

    def status() -> str:
        value: str = fleet.api.get(f"/updates/{batch_id}/status")["status"]
        return value

    log_in(page, fleet, "admin", ADMIN_PASSWORD, f"/rollouts/{batch_id}")
    expect(page.get_by_test_id("rollout-status")).to_have_text("进行中")
    expect(page.get_by_text("第 1 / 4 批")).to_be_visible()
    page.get_by_role("button", name="暂停").click()
    expect(page.get_by_test_id("rollout-status")).to_have_text("已暂停")
    assert status() == "paused"
    page.get_by_role("button", name="继续").click()
    expect(page.get_by_test_id("rollout-status")).to_have_text("进行中")
    assert status() == "running"
    page.get_by_role("button", name="取消发布").click()
    page.get_by_role("dialog").get_by_role("button", name="取消发布").click()
    expect(page.get_by_test_id("rollout-status")).to_have_text("已取消")
    assert status() == "cancelled"
    for name in ("暂停", "继续", "取消发布"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    screenshot(page, "rollout-cancelled.zh-CN")


def test_an_admin_manages_users(page: Page, fleet: Fleet) -> None:
    fleet.api.send(
        "POST",
        "/system/users",
        {"username": "carol", "password": "Viewer-Passw0rd-123", "role": "viewer", "status": 1},
    )
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/users")
    settled(page)

    def carol() -> dict[str, object]:
        users = fleet.api.get("/system/users", keyword="carol")["items"]
        found: dict[str, object] = users[0]
        return found

    page.get_by_role("button", name="修改角色 carol").click()
    page.get_by_role("dialog").get_by_role("combobox", name="角色").click()
    page.get_by_role("option", name="运维人员").click()
    page.get_by_role("dialog").get_by_role("button", name="保存").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    poll_until(lambda: carol()["role"] == "operator", what="carol is an operator")

    page.get_by_role("button", name="停用 carol").click()
    page.get_by_role("dialog").get_by_role("button", name="停用").click()
    expect(page.get_by_role("button", name="启用 carol")).to_be_visible()
    assert carol()["status"] == 0

    page.get_by_role("button", name="启用 carol").click()
    page.get_by_role("dialog").get_by_role("button", name="启用").click()
    expect(page.get_by_role("button", name="停用 carol")).to_be_visible()

    page.get_by_role("button", name="重置密码 carol").click()
    page.get_by_role("dialog").get_by_label("新密码").fill("Fresh-Passw0rd-456")
    page.get_by_role("dialog").get_by_role("button", name="保存").click()
    expect(page.get_by_text("已重置 carol 的密码")).to_be_visible()
    login = httpx.post(
        f"{fleet.url}/api/v1/auth/login",
        json={"username": "carol", "password": "Fresh-Passw0rd-456"},
    )
    assert login.status_code == 200, login.text
    screenshot(page, "users-actions.zh-CN")

    page.get_by_role("button", name="删除用户 carol").click()
    page.get_by_role("dialog").get_by_role("button", name="删除用户").click()
    expect(page.get_by_role("button", name="删除用户 carol")).to_have_count(0)
    assert fleet.api.get("/system/users", keyword="carol")["total"] == 0


def test_every_page_in_both_languages(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD)
    for name, path in PAGES.items():
        page.goto(f"{fleet.url}{path}")
        settled(page)
        assert CJK.search(page.inner_text("body")), f"{name} shows no Chinese in zh-CN"
        screenshot(page, f"{name}.zh-CN")

    page.get_by_role("button", name="语言").click()
    page.get_by_role("menuitem", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    for name, path in PAGES.items():
        page.goto(f"{fleet.url}{path}")
        settled(page)
        text = page.inner_text("body")
        assert not CJK.search(text), f"{name} still shows Chinese in en: {CJK.findall(text)[:10]}"
        screenshot(page, f"{name}.en")
    page.goto(f"{fleet.url}/nodes/{fleet.daemon_node_id}")
    settled(page)
    expect(page.get_by_test_id("metric-charts")).to_be_visible()
    assert not CJK.search(page.inner_text("body"))
    screenshot(page, "node-detail.en")

    page.get_by_role("button", name="Dark mode").click()
    page.goto(f"{fleet.url}/")
    settled(page)
    screenshot(page, "dashboard.en.dark")

    page.get_by_role("button", name="Account").click()
    page.get_by_role("menuitem", name="Log out").click()
    page.wait_for_url(re.compile(r"/login(\?|$)"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    screenshot(page, "login.en")
    page.goto(f"{fleet.url}/")
    page.wait_for_url("**/login?next=**")
