"""One node's output as Server-Sent Events: from the start or an offset (Last-Event-ID wins),
then the end with the final state; errors before any event; who may read it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.app import create_app
from opscaffold.manager.limits import ResponseTimeout
from opscaffold.manager.models import TaskExecution
from tests.manager.conftest import Stack, bearer, login, make_user
from tests.manager.sse import read_all

pytestmark = pytest.mark.timeout(60)
OUTPUT = "line 1\nzwei é\n" + "x" * 70_000 + "\nend\n"  # more than one event's worth


async def finished(stack: Stack, node_id: int = 7, **values: object) -> str:
    execution_id = str(uuid.uuid4())
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(TaskExecution).values(
                task_id=1,
                execution_id=execution_id,
                node_id=node_id,
                **({"status": "failed", "exit_code": 3, "output": OUTPUT} | values),
            )
        )
    return execution_id


def stream_url(execution_id: str, node_id: int = 7) -> str:
    return f"/api/v1/executions/{execution_id}/nodes/{node_id}/output/stream"


async def test_the_whole_output_then_the_end(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    execution_id = await finished(stack, output_truncated=1)
    response = await client.get(stream_url(execution_id), headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = await read_all(response)

    *parts, end = got
    assert len(parts) > 1  # split into events of a bounded size
    assert "".join(p.text for p in parts) == OUTPUT
    offset = 0
    for part in parts:
        assert part.name == "output"
        assert part.data["offset"] == offset
        offset += len(part.text.encode())
        assert part.id == str(offset)
    assert end.name == "end"
    assert end.data == {"status": "failed", "exit_code": 3, "truncated": True}


async def test_from_an_offset_and_from_the_last_event_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    execution_id = await finished(stack)
    after_line_one = len(b"line 1\n")
    from_offset = await read_all(
        await client.get(
            stream_url(execution_id), params={"offset": after_line_one}, headers=admin_headers
        )
    )
    assert from_offset[0].data["offset"] == after_line_one
    assert "".join(e.text for e in from_offset[:-1]) == OUTPUT[len("line 1\n") :]

    resumed = await read_all(
        await client.get(
            stream_url(execution_id),
            params={"offset": 0},
            headers=admin_headers | {"Last-Event-ID": str(after_line_one)},
        )
    )
    assert [e.text for e in resumed[:-1]] == [e.text for e in from_offset[:-1]]

    inside_e_acute = len(b"line 1\nzwei ") + 1
    skipped = await read_all(
        await client.get(
            stream_url(execution_id), params={"offset": inside_e_acute}, headers=admin_headers
        )
    )
    assert skipped[0].data["offset"] == inside_e_acute + 1  # never half a character
    assert skipped[0].text.startswith("\n")

    past_the_end = await read_all(
        await client.get(stream_url(execution_id), params={"offset": 10**9}, headers=admin_headers)
    )
    assert [e.name for e in past_the_end] == ["end"]


async def test_an_execution_ended_without_output_sends_only_the_end(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    execution_id = await finished(stack, status="timeout", exit_code=None, output=None)
    got = await read_all(await client.get(stream_url(execution_id), headers=admin_headers))
    assert [(e.name, e.data) for e in got] == [
        ("end", {"status": "timeout", "exit_code": None, "truncated": False})
    ]


async def test_unknown_executions_nodes_and_bad_ids_are_refused_before_any_event(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    execution_id = await finished(stack)
    for url in (stream_url(str(uuid.uuid4())), stream_url(execution_id, node_id=8)):
        response = await client.get(url, headers=admin_headers)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["code"] == 4011
    bad = await client.get(
        stream_url(execution_id), headers=admin_headers | {"Last-Event-ID": "abc"}
    )
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.json()["message"]
    negative = await client.get(
        stream_url(execution_id), params={"offset": -1}, headers=admin_headers
    )
    assert negative.status_code == 400


async def test_editors_read_the_stream_and_viewers_do_not_like_the_output_itself(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    execution_id = await finished(stack)
    assert (await client.get(stream_url(execution_id))).status_code == 401
    for role, status in (("operator", 200), ("viewer", 403)):
        await make_user(client, admin_headers, role, role)
        token = (await login(client, role, "Str0ng-Password"))["token"]
        response = await client.get(stream_url(execution_id), headers=bearer(token))
        assert response.status_code == status, (role, response.text)
        plain = await client.get(
            f"/api/v1/executions/{execution_id}/nodes/7/output", headers=bearer(token)
        )
        assert plain.status_code == status, role


async def test_a_reader_that_stops_reading_is_dropped_and_forgotten(
    client: httpx.AsyncClient, admin_headers: dict[str, str], stack: Stack
) -> None:
    execution_id = await finished(stack)
    http = stack.settings.server.http.model_copy(
        update={"write_timeout": timedelta(milliseconds=200)}
    )
    server = stack.settings.server.model_copy(update={"http": http})
    app = create_app(stack.settings.model_copy(update={"server": server}), runtime=stack.runtime)
    started: list[int] = []
    requested: list[bool] = []

    async def receive() -> dict[str, object]:
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # never disconnects either
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message["status"])
            return
        await asyncio.Event().wait()  # the client's window stays full: no event is taken

    authorization = admin_headers["Authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": stream_url(execution_id),
        "raw_path": stream_url(execution_id).encode(),
        "query_string": b"",
        "headers": [(b"host", b"manager"), (b"authorization", authorization)],
        "client": ("203.0.113.7", 50000),
        "server": ("manager", 80),
    }
    with pytest.raises(ResponseTimeout):
        async with asyncio.timeout(10):
            await app(scope, receive, send)
    assert started == [200]
    assert stack.runtime.output_bus.readers == 0  # nothing kept for it
