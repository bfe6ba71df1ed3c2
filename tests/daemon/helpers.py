"""Shared by the daemon and fleet tests: a Manager that is down, the agent's health."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import psutil

from tests.helpers import free_port

BIN = Path(sys.executable).parent


def closed_port_target() -> str:
    """An address where nothing listens: a Manager that is down."""
    return f"127.0.0.1:{free_port()}"


def health(port: int) -> dict[str, object] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except httpx.TransportError:
        return None
    body: dict[str, object] = response.json()
    return body


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
