"""A real Manager (serving the built console), a real daemon and simulated nodes, and
Debian's Chromium driven headless by Playwright."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from opscaffold.manager.ui.serve import STATIC_DIR
from opscaffold.protocol.manifest import generate_key, private_pem, public_pem
from tests.e2e.processes import BIN, Api, Daemon, Manager
from tests.helpers import poll_until

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
ADMIN_PASSWORD = "Web-Admin-Passw0rd"
VIEWER = ("watcher", "Web-Viewer-Passw0rd")
ENROLLMENT_TOKEN = "ose_web-enrollment-token-0123456789"
FLEET_NODES = 12
SIMULATED_GROUP = "simulated"  # the virtual nodes, a deploy target that leaves the real daemon be
DAEMON_LABELS = "role=web-console,env=e2e"
ENV = {
    "OPS_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "OPS_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
    "OPS_NODE__HEARTBEAT_INTERVAL": "1s",
    "OPS_NODE__METRIC_INTERVAL": "1s",
    "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
    "OPS_LOG__LEVEL": "warning",
    "OPS_ROLLOUT__TICK_INTERVAL": "1s",
    "OPS_ALERT__EVALUATION_INTERVAL": "1s",
    "OPS_ALERT__NOTIFY__INTERVAL": "1s",
    "OPS_ALERT__NOTIFY__ALLOW_PRIVATE_NETWORKS": "true",  # the test's webhook receiver is local
}

expect.set_options(timeout=15_000)


@dataclass
class Fleet:
    manager: Manager
    api: Api
    daemon_hostname: str
    daemon_node_id: int
    simulated_group_id: int

    @property
    def url(self) -> str:
        return self.manager.url


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail(f"the web console is not built in {STATIC_DIR}: run `make web`")
    root = tmp_path_factory.mktemp("web-e2e")
    # The Manager signs uploaded packages with this key; the simulated nodes trust only it.
    signing = generate_key()
    (root / "signing.pem").write_bytes(private_pem(signing))
    (root / "signing.pem").chmod(0o600)
    (root / "trusted.pem").write_bytes(public_pem(signing.public_key()))
    manager = Manager(root, ENV | {"OPS_STORAGE__SIGNING_KEY_FILE": str(root / "signing.pem")})
    try:
        manager.start()
    except BaseException:
        manager.ensure_stopped()  # one that started too slowly would outlive the test run
        raise
    daemon = Daemon(manager, root / "node-web", ENROLLMENT_TOKEN, "--labels", DAEMON_LABELS)
    with (root / "fleet.log").open("ab") as log:
        simulated = subprocess.Popen(
            [
                str(BIN / "ops-fleet"), "run",
                "--manager", f"127.0.0.1:{manager.grpc_port}",
                "--enrollment-token", ENROLLMENT_TOKEN,
                "--nodes", str(FLEET_NODES),
                "--ramp", "1",
                "--heartbeat-interval", "1",
                "--metric-interval", "1",
                "--trusted-key", str(root / "trusted.pem"),
                "--update-seconds", "2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
    try:
        daemon.start()
        api = Api(manager, ADMIN_PASSWORD)
        poll_until(
            lambda: api.get("/nodes", status="online")["total"] == FLEET_NODES + 1,
            timeout=60,
            what="the daemon and every simulated node are online",
        )
        node = api.get("/nodes", label="role=web-console")["items"][0]
        # Charts need a few reports of the real daemon.
        poll_until(
            lambda: len(api.get(f"/nodes/{node['id']}/metrics")) >= 3,
            timeout=60,
            what="the daemon has reported metrics",
        )
        api.send(
            "POST",
            "/system/users",
            {"username": VIEWER[0], "password": VIEWER[1], "role": "viewer", "status": 1},
        )
        api.send("POST", "/groups", {"name": "web-frontends"})
        group = api.send("POST", "/groups", {"name": SIMULATED_GROUP})
        for simulated_node in api.get("/nodes", page_size=100)["items"]:
            if simulated_node["id"] != node["id"]:
                api.send("PUT", f"/nodes/{simulated_node['id']}", {"group_id": group["id"]})
        yield Fleet(manager, api, node["hostname"], node["id"], group["id"])
    finally:
        simulated.terminate()
        try:
            simulated.wait(timeout=15)
        except subprocess.TimeoutExpired:
            simulated.kill()
        daemon.stop()
        manager.ensure_stopped()


# Module scope, not session: while Playwright's sync API runs it holds an event loop on this
# thread, and the async tests of other modules need the thread's loop to themselves.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    instance = context.new_page()
    errors: list[str] = []
    instance.on("pageerror", lambda error: errors.append(str(error)))
    yield instance
    context.close()
    assert not errors, f"the page raised: {errors}"


def log_in(page: Page, fleet: Fleet, username: str, password: str, path: str = "/") -> None:
    page.goto(f"{fleet.url}{path}")
    page.wait_for_url("**/login?next=**")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
