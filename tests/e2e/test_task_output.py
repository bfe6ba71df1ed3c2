"""A task's output followed live through a real Manager, daemon and Agent: a script printing a
line every half second is read as Server-Sent Events while it runs, and a reader that left
comes back where it stopped (Last-Event-ID)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, online_node
from tests.e2e.test_tasks import ENV, ended, output, run
from tests.helpers import poll_until

pytestmark = pytest.mark.timeout(120)
LINES = 10
SCRIPT = f'for i in $(seq 1 {LINES}); do echo "line $i of {LINES}"; sleep 0.5; done'


@dataclass(frozen=True)
class Event:
    name: str
    id: str | None
    data: dict[str, Any]
    at: float  # monotonic, when it arrived


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, ENV)
    instance.start()
    yield instance
    instance.ensure_stopped()


@pytest.fixture
def daemon(manager: Manager, tmp_path: Path) -> Iterator[Daemon]:
    instance = Daemon(manager, tmp_path / "node-a", ENROLLMENT_TOKEN)
    instance.start()
    yield instance
    instance.stop()


def stream(api: Api, execution_id: str, node_id: int, **headers: str) -> Iterator[Event]:
    """The events of the execution's output stream, as they arrive."""
    url = f"{api.base}/executions/{execution_id}/nodes/{node_id}/output/stream"
    with httpx.stream("GET", url, headers=api.headers | headers, timeout=30) as response:
        assert response.status_code == 200, response.read()
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "data" in fields:
                data = json.loads(fields["data"])
                yield Event(
                    fields.get("event", "message"), fields.get("id"), data, time.monotonic()
                )
            fields = {}


def test_output_is_read_while_the_script_runs_and_a_reader_resumes_where_it_left(
    manager: Manager, daemon: Daemon
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    node_id = poll_until(lambda: online_node(api), what="the node comes online")["id"]
    execution_id = run(api, node_id, SCRIPT)

    first: list[Event] = []
    for event in stream(api, execution_id, node_id):
        assert event.name == "output"  # the script is far from its end
        first.append(event)
        if "line 2 " in "".join(e.data["data"] for e in first):
            break  # the reader leaves
    left_at = first[-1].id
    assert left_at is not None

    second = list(stream(api, execution_id, node_id, **{"Last-Event-ID": left_at}))
    *parts, end = second
    assert end.name == "end"
    assert end.data == {"status": "success", "exit_code": 0, "truncated": False}
    assert parts[0].data["offset"] == int(left_at)  # back where it left
    text = "".join(e.data["data"] for e in first + parts)
    assert text == "".join(f"line {i} of {LINES}\n" for i in range(1, LINES + 1))
    assert text == output(api, execution_id, node_id)["output"]
    assert ended(api, execution_id)["status"] == "success"
    # The first lines came while the script ran: it prints for 5 s after them.
    assert first[0].at < end.at - 3.0
    assert len(parts) > 1  # and the rest came part by part, not all at the end

    again = list(stream(api, execution_id, node_id))  # after the end: all of it, then the end
    assert "".join(e.data["data"] for e in again[:-1]) == text
    assert again[-1].name == "end"
