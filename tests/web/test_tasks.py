"""Tasks in a real browser: write a script in the form, run it on the real daemon, read its
output and its status, and see the pages in both languages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import poll_until
from tests.web.conftest import ADMIN_PASSWORD, VIEWER, Fleet, log_in, screenshot
from tests.web.test_console import CJK, settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def create_script_task(page: Page, fleet: Fleet, name: str, script: str) -> int:
    """Fills the new-task form for a script on the daemon's node; returns the task's id."""
    page.goto(f"{fleet.url}/tasks/new")
    page.get_by_role("textbox", name="名称", exact=True).fill(name)
    editor = page.get_by_role("textbox", name="脚本")
    editor.click()
    page.keyboard.type(script)
    nodes = page.get_by_role("combobox", name="节点", exact=True)
    nodes.fill(fleet.daemon_hostname)
    page.get_by_role("option", name=re.compile(f"^{re.escape(fleet.daemon_hostname)} ")).click()
    page.get_by_role("textbox", name="超时（秒）").fill("60")
    page.get_by_role("button", name="新建任务").click()
    page.wait_for_url(re.compile(r"/tasks/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def run_by_api(fleet: Fleet, name: str) -> tuple[dict[str, Any], str]:
    """A script task on the daemon's node, run through the API until it has finished."""
    task: dict[str, Any] = fleet.api.send(
        "POST",
        "/tasks",
        {
            "name": name,
            "type": "script",
            "content": {"script": "echo hi", "env": {"TOKEN": {"value": "s3cret", "secret": True}}},
            "cron_expr": "0 2 * * *",
            "target_type": "node",
            "target_value": [str(fleet.daemon_node_id)],
        },
    )
    execution_id: str = fleet.api.send("POST", f"/tasks/{task['id']}/execute")["execution_id"]
    poll_until(
        lambda: fleet.api.get(f"/executions/{execution_id}")["status"] == "finished",
        timeout=60,
        what=f"execution {execution_id} finishes",
    )
    return task, execution_id


def test_write_a_script_run_it_on_the_daemon_and_read_its_output(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/tasks")
    task_id = create_script_task(page, fleet, "say hello", "echo hello")
    task = fleet.api.get(f"/tasks/{task_id}")
    assert task["content"]["script"] == "echo hello"
    assert task["target_type"] == "node"
    assert task["target_value"] == [str(fleet.daemon_node_id)]
    expect(page.get_by_role("heading", name="say hello")).to_be_visible()
    expect(page.get_by_test_id("task-target")).to_contain_text(fleet.daemon_hostname)

    page.get_by_role("button", name="执行", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="立即执行").click()
    page.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}$"))
    execution_id = page.url.rsplit("/", 1)[1]
    output = page.get_by_test_id("node-output")
    expect(output.get_by_test_id("output-text")).to_contain_text("hello", timeout=60_000)
    expect(page.get_by_test_id("execution-status")).to_have_text("成功", timeout=60_000)
    expect(output.get_by_test_id("output-exit-code")).to_have_text("退出码 0")
    row = page.get_by_role("row", name=re.compile(re.escape(fleet.daemon_hostname)))
    expect(row.get_by_test_id("execution-state")).to_have_text("成功")
    settled(page)
    screenshot(page, "task-execution.zh-CN")
    execution = fleet.api.get(f"/executions/{execution_id}")
    assert execution["status"] == "finished"
    assert execution["nodes"][0]["exit_code"] == 0

    # The task's history lists the run; it opens the execution again.
    page.get_by_role("link", name="返回任务").click()
    history = page.get_by_role("row", name=re.compile(execution_id))
    expect(history).to_contain_text("成功 1")
    settled(page)
    screenshot(page, "task-detail.zh-CN")
    history.click()
    page.wait_for_url(f"**/executions/{execution_id}")


def test_a_bad_field_is_named_by_the_server_on_its_field(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/tasks/new")
    page.get_by_role("textbox", name="名称", exact=True).fill("too long")
    page.get_by_role("textbox", name="脚本").click()
    page.keyboard.type("true")
    page.get_by_role("combobox", name="执行范围").click()
    page.get_by_role("option", name="全部节点").click()
    timeout = page.get_by_role("textbox", name="超时（秒）")
    timeout.fill("999999")  # over the API's ceiling: only the server knows it
    page.get_by_role("button", name="新建任务").click()
    expect(page.get_by_test_id("task-save-error")).to_contain_text("(1001)")
    expect(timeout).to_have_attribute("aria-invalid", "true")
    assert fleet.api.get("/tasks", name="too long")["total"] == 0


def test_a_viewer_reads_tasks_but_cannot_change_or_run_them(page: Page, fleet: Fleet) -> None:
    _task, execution_id = run_by_api(fleet, "viewer sees me")
    log_in(page, fleet, *VIEWER, path="/tasks")
    expect(page.get_by_text("viewer sees me")).to_be_visible()
    expect(page.get_by_role("link", name="新建任务")).to_have_count(0)
    page.get_by_text("viewer sees me").click()
    expect(page.get_by_role("heading", name="viewer sees me")).to_be_visible()
    for name in ("执行", "编辑", "删除任务"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="编辑", exact=True)).to_have_count(0)
    page.goto(f"{fleet.url}/executions/{execution_id}")
    expect(page.get_by_text("你的角色不能查看任务输出。")).to_be_visible()
    expect(page.get_by_role("button", name="取消执行")).to_have_count(0)


def test_the_task_pages_in_both_languages(page: Page, fleet: Fleet) -> None:
    log_in(page, fleet, "admin", ADMIN_PASSWORD, "/tasks")
    task, execution_id = run_by_api(fleet, "nightly report")
    pages = {
        "tasks": "/tasks",
        "task-new": "/tasks/new",
        "task": f"/tasks/{task['id']}",
        "execution": f"/executions/{execution_id}",
    }
    for name, path in pages.items():
        page.goto(f"{fleet.url}{path}")
        settled(page)
        assert CJK.search(page.inner_text("body")), f"{name} shows no Chinese in zh-CN"
        screenshot(page, f"{name}.zh-CN")

    page.get_by_role("button", name="语言").click()
    page.get_by_role("menuitem", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.set_viewport_size({"width": 1024, "height": 800})  # the narrowest screen we lay out for
    for name, path in pages.items():
        page.goto(f"{fleet.url}{path}")
        settled(page)
        text = page.inner_text("body")
        assert not CJK.search(text), f"{name} still shows Chinese in en: {CJK.findall(text)[:10]}"
        screenshot(page, f"{name}.en")
