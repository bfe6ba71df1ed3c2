"""Fixtures shared by every test: real databases, a real Redis, the app over ASGI."""

from __future__ import annotations

import os
import socket

import pytest

from opscaffold.manager.config import LogSettings
from opscaffold.manager.logging import configure as configure_logging

SERVICES = {"mysql": 3306, "postgres": 5432, "redis": 6379}
# Several checkouts may run their suites at once on one machine: each picks a slot
# (OPS_TEST_SLOT, 0 by default), which gives it databases and Redis numbers of its own.
TEST_SLOT = int(os.environ.get("OPS_TEST_SLOT", "0"))
if not 0 <= TEST_SLOT <= 7:  # Redis has 16 databases and a slot takes two of them
    raise SystemExit(f"OPS_TEST_SLOT must be 0..7, not {TEST_SLOT}")


def slot_name(name: str) -> str:
    """A database name of this checkout's slot (slot 0 keeps the plain name)."""
    return name if TEST_SLOT == 0 else f"{name}_s{TEST_SLOT}"


def slot_redis_db(offset: int) -> str:
    """Redis database numbers 15 downwards, two per slot."""
    return str(15 - 2 * TEST_SLOT - offset)


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
