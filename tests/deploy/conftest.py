"""What the deployment files are checked against: the Manager's settings and routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from opscaffold.manager.kit.routes import iter_routes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def app_paths() -> set[str]:
    """The paths the Manager's HTTP app serves (GET), probes and /metrics included."""
    from opscaffold.manager.app import create_app
    from opscaffold.manager.config import load_settings

    settings = load_settings(None, {"OPS_DATA_DIR": "/nonexistent-routes-only"})
    app = create_app(settings, build_only=True)
    return {path for method, path in iter_routes(app.routes) if method == "GET"}
