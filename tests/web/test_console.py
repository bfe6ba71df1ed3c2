"""The flows an operator performs in the web console, in a real browser against real processes."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import ADMIN_PASSWORD, VIEWER, Fleet, log_in, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CJK = re.compile(r"[\u4e00-\u9fff]")
PAGES = {
    "dashboard": "/",
    "nodes": "/nodes",
    "groups": "/groups",
    "versions": "/versions",
    "users": "/users",
    "audit-logs": "/audit-logs",
    "enrollment-tokens": "/enrollment-tokens",
}


def settled(page: Page) -> None:
    """No request in flight and no spinner left: the page shows its data (or its empty state)."""
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("progressbar")).to_have_count(0)


def test_login_lands_on_the_dashboard_with_the_apis_counts(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD)
    assert urlparse(page.url).path == "/"
    expect(page.get_by_role("heading", name="仪表盘")).to_be_visible()
    settled(page)
    for status in ("online", "offline", "unknown"):
        total = fleet.api.get("/nodes", status=status, page_size=1)["total"]
        expect(page.get_by_test_id(f"count-{status}")).to_have_text(str(total))
    total = fleet.api.get("/nodes", page_size=1)["total"]
    expect(page.get_by_test_id("count-total")).to_have_text(str(total))
    assert total >= 13


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
    expect(menu.get_by_role("link")).to_have_text(["仪表盘", "节点管理", "节点分组", "版本管理"])
    page.goto(f"{fleet.url}/nodes/{fleet.daemon_node_id}")
    expect(page.get_by_test_id("metric-charts")).to_be_visible()
    expect(page.get_by_role("button", name="连通性检测")).to_have_count(0)
    expect(page.get_by_role("button", name="删除节点")).to_have_count(0)
    expect(page.get_by_role("button", name="编辑", exact=True)).to_have_count(0)
    page.goto(f"{fleet.url}/groups")
    expect(page.get_by_text("web-frontends")).to_be_visible()
    expect(page.get_by_role("button", name="新建分组")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("编辑分组"))).to_have_count(0)
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
