"""The Manager's settings over REST (admin): key fingerprints, retention, node defaults."""

from __future__ import annotations

from fastapi import APIRouter

from opscaffold.manager.deps import RuntimeDep
from opscaffold.manager.kit.envelope import Envelope
from opscaffold.manager.kit.responses import ok
from opscaffold.manager.kit.routes import API_PREFIX
from opscaffold.manager.system import service
from opscaffold.manager.system.schemas import SystemSettingsRead

router = APIRouter(prefix=f"{API_PREFIX}/system", tags=["system"])


@router.get("/settings", response_model=Envelope[SystemSettingsRead])
async def get_system_settings(runtime: RuntimeDep) -> Envelope[SystemSettingsRead]:
    """What an administrator checks against the nodes: the fingerprints of the keys package
    signatures are accepted from and of the task signing key, how long metrics are kept,
    and the default node configuration. Read-only: these come from the Manager's settings."""
    return ok(service.summary(runtime))
