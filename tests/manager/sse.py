"""Reading Server-Sent Events in tests, and serving an app over real HTTP (httpx's ASGI
transport hands a response over only once it is complete, so a live stream needs a server)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.helpers import free_port, wait_until


@dataclass(frozen=True)
class Event:
    name: str
    id: str | None
    data: Any
    at: float  # monotonic, when it arrived

    @property
    def text(self) -> str:
        found: str = self.data["data"]
        return found


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a streamed response as they arrive (comment lines left out)."""
    name, event_id, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(name, event_id, json.loads("\n".join(data)), time.monotonic())
            name, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


async def read_all(response: httpx.Response) -> list[Event]:
    return [event async for event in events(response)]


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """`app` on a loopback port (its lifespan already entered by the test's stack); the
    base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or serving.done(), what="the server listens")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
