"""Fixtures shared by every test: real databases, a real Redis, the app over ASGI."""

from __future__ import annotations

import os
import socket

import pytest

from opscaffold.manager.config import LogSettings
from opscaffold.manager.logging import configure as configure_logging

SERVICES = {"mysql": 3306, "postgres": 5432, "redis": 6379}


def service_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip when a local service is missing, except in CI, where a missing one fails the run."""
    if service_up(SERVICES[name]):
        return
    message = f"{name} is not reachable on 127.0.0.1:{SERVICES[name]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: every service is required)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _json_logs() -> None:
    """The Manager's own log setup (JSON, warnings and up) for every test, as in production;
    structlog's development renderer would format tracebacks slowly and in colour."""
    configure_logging(LogSettings(level="warning"))
