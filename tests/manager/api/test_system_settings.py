"""`GET /system/settings`: the Manager's key fingerprints, retention and node defaults."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx

from opscaffold.manager.system import service
from opscaffold.manager.version.keys import KeyRing
from opscaffold.protocol import manifest, task
from tests.manager.conftest import Stack, bearer, login, make_user

SETTINGS = "/api/v1/system/settings"


async def test_an_admin_reads_the_keys_retention_and_defaults(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(SETTINGS, headers=admin_headers)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    # The fingerprints are those of the keys the Manager signs with, computed from them here.
    own = manifest.fingerprint(stack.runtime.keys.signing_key.public_key())
    assert data["package_keys"][0] == {
        "fingerprint": own,
        "source": "manager signing key",
        "own": True,
    }
    assert data["task_key_fingerprint"] == task.fingerprint(
        stack.runtime.task_key.private.public_key()
    )
    metrics = stack.settings.metrics
    assert data["retention"] == {
        "raw_metrics_days": metrics.raw_retention_days,
        "metric_rollups_days": metrics.retention_days,
    }
    assert data["node_defaults"] == {"heartbeat_interval": "30", "metric_interval": "60"}
    assert data["timing"]["heartbeat_timeout_seconds"] == 90
    # Nothing secret: no PEM, no private material.
    assert "PRIVATE" not in response.text
    assert "BEGIN" not in response.text


async def test_only_admins_read_the_settings(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for role in ("operator", "viewer"):
        await make_user(client, admin_headers, f"a-{role}", role)
        headers = bearer((await login(client, f"a-{role}", "Str0ng-Password"))["token"])
        response = await client.get(SETTINGS, headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == 1003


async def test_offline_signers_keys_are_listed_after_the_managers(
    stack: Stack, tmp_path: Path
) -> None:
    offline = manifest.generate_key().public_key()
    (tmp_path / "release.pub").write_bytes(manifest.public_pem(offline))
    settings = stack.settings.model_copy(
        update={
            "storage": stack.settings.storage.model_copy(
                update={"trusted_keys": [tmp_path / "release.pub"]}
            )
        }
    )
    runtime = replace(stack.runtime, settings=settings, keys=KeyRing.load(settings))
    keys = service.summary(runtime).package_keys
    assert [(k.fingerprint, k.own) for k in keys] == [
        (runtime.keys.fingerprint, True),
        (manifest.fingerprint(offline), False),
    ]
    assert keys[1].source == str(tmp_path / "release.pub")
