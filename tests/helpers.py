"""What tests of every kind share: free ports, and waiting on a condition (never on time)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until(
    condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition holds"
) -> Any:
    """Check `condition` (plain or async) until it gives something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(0.05)


def poll_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    what: str = "the condition holds",
    every: float = 0.05,
) -> Any:
    """The same for tests without an event loop (real processes driven from a thread).
    `every`: a long wait through the API polls less often, under the Manager's rate limit."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(every)
    return value
