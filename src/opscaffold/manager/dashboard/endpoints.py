"""The dashboard over REST (spec §4.4 `GET /system/dashboard`)."""

from __future__ import annotations

from fastapi import APIRouter

from opscaffold.manager.dashboard.schemas import Dashboard
from opscaffold.manager.db import end_read
from opscaffold.manager.deps import RuntimeDep, SessionDep
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/system", tags=["system"])


@router.get("/dashboard", response_model=Envelope[Dashboard])
async def get_dashboard(runtime: RuntimeDep, session: SessionDep) -> Envelope[Dashboard]:
    """The fleet at a glance (spec §5.2.1): node and agent counts, active alerts by severity,
    status and version distributions, the 24 h resource trend and the newest alerts. The
    figures are at most a few seconds old (`dashboard.max_age`); `generated_at` says when
    they were computed."""
    # The figures are computed in a session of their own (shared by concurrent requests):
    # this request's connection, used to authorise it, goes back to the pool meanwhile.
    await end_read(session)
    return ok(await runtime.dashboard.get())
