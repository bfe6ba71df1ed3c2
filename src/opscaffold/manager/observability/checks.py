"""The dependency checks behind /health, /readyz and the gRPC health service.

The database is required: without it the Manager cannot serve. Redis is not: without it the
Manager serves on its own (see manager/redis.py), so a Redis outage makes it degraded, not
unhealthy.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import sqlalchemy as sa

from opscaffold.manager.redis import REDIS_ERRORS
from opscaffold.manager.runtime import Runtime

CHECK_TIMEOUT_S = 2.0
OK = "ok"
DISABLED = "disabled"  # Redis when the Manager is configured without it
REQUIRED = frozenset({"database"})
Status = Literal["ok", "degraded", "unhealthy"]


async def _check_database(runtime: Runtime) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), runtime.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return OK


async def _check_redis(runtime: Runtime) -> str:
    link = runtime.redis_link
    assert link is not None
    if not link.usable:  # its watcher is already trying; say why it is not used
        return f"error: {(link.reason or 'unavailable').split(':', 1)[0]}"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await link.client.ping()
    except REDIS_ERRORS as exc:
        link.failed(exc)
        return f"error: {type(exc).__name__}"
    return OK


async def dependency_checks(runtime: Runtime) -> dict[str, str]:
    checks = {"database": _check_database(runtime)}
    if runtime.redis_link is not None:
        checks["redis"] = _check_redis(runtime)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    # Named even when not used, so a probe's reader sees what was (and was not) checked.
    return results if runtime.redis_link is not None else results | {"redis": DISABLED}


def overall(checks: dict[str, str]) -> Status:
    failing = {name for name, result in checks.items() if result not in (OK, DISABLED)}
    if failing & REQUIRED:
        return "unhealthy"
    return "degraded" if failing else "ok"
