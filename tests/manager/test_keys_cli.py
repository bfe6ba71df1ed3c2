"""`ops-manager keys`: the Manager's signing key, trusted keys and offline signing."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest

from opscaffold.protocol import manifest as signing
from opscaffold.protocol import task as task_protocol
from opscaffold.protocol.manifest import Manifest
from tests.manager.test_migrations import run_cli

pytestmark = pytest.mark.e2e


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"OPS_DATA_DIR": str(data_dir), **extra}


async def test_generate_list_export_and_sign(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    code, out, err = await run_cli(env, "keys", "generate")
    assert code == 0, err
    key_file = tmp_path / "data" / "secrets" / "signing_key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    fingerprint = out.strip()

    code, _, err = await run_cli(env, "keys", "generate")
    assert code == 1
    assert "never replaced" in err
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")

    code, public_pem, _ = await run_cli(env, "keys", "export-public")
    assert code == 0
    public = signing.load_public_key(public_pem.encode())
    assert signing.fingerprint(public) == fingerprint
    assert "PRIVATE" not in public_pem

    package = tmp_path / "ops-daemon.tar.gz"
    package.write_bytes(b"package bytes" * 100)
    options = ["--component", "agent", "--version", "1.4.2", "--os", "linux", "--arch", "arm64"]
    at = ["--created-at", "2026-12-05T06:00:00"]
    code, out, err = await run_cli(env, "keys", "sign", str(package), *options, *at)
    assert code == 0, err
    signed = json.loads(out)
    manifest = Manifest.model_validate(signed["manifest"])
    assert manifest.sha256 == hashlib.sha256(package.read_bytes()).hexdigest()
    assert manifest.size == package.stat().st_size
    assert manifest.created_at == "2026-12-05T06:00:00Z"
    assert signing.verify(manifest, base64.b64decode(signed["signature"]), [public]) == fingerprint


async def test_offline_key_is_listed_once_trusted(tmp_path: Path) -> None:
    offline = tmp_path / "offline.pem"
    code, offline_fingerprint, err = await run_cli(
        env_for(tmp_path / "signer"), "keys", "generate", "--out", str(offline)
    )
    assert code == 0, err
    assert stat.S_IMODE(offline.stat().st_mode) == 0o600
    public = tmp_path / "offline.pub"
    code, pem, _ = await run_cli(
        env_for(tmp_path / "signer"), "keys", "export-public", "--key", str(offline)
    )
    public.write_text(pem)

    env = env_for(tmp_path / "data", OPS_STORAGE__TRUSTED_KEYS=str(public))
    assert (await run_cli(env, "keys", "generate"))[0] == 0
    code, out, err = await run_cli(env, "keys", "list")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("manager signing key")
    assert lines[1] == f"{offline_fingerprint.strip()}  {public}"


async def test_bad_input_is_refused_with_a_message(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    code, _, err = await run_cli(env, "keys", "list")
    assert code == 1
    assert "keys generate" in err  # no key yet: says how to make one
    assert (await run_cli(env, "keys", "generate"))[0] == 0
    package = tmp_path / "p.bin"
    package.write_bytes(b"x")
    code, _, err = await run_cli(
        env, "keys", "sign", str(package), "--component", "daemon", "--version", "1.0; rm -rf"
    )
    assert code == 1
    assert "--version" in err
    code, _, err = await run_cli(
        env,
        "keys",
        "sign",
        str(tmp_path / "missing"),
        "--component",
        "daemon",
        "--version",
        "1.0.0",
    )
    assert code == 1
    assert "cannot read" in err
    bad_trust = env_for(tmp_path / "data", OPS_STORAGE__TRUSTED_KEYS=str(package))
    code, _, err = await run_cli(bad_trust, "keys", "list")
    assert code == 1
    assert "storage.trusted_keys.0" in err


async def test_serve_stops_on_a_signing_key_it_cannot_use(tmp_path: Path) -> None:
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("not a key")
    env = env_for(tmp_path / "data", OPS_STORAGE__SIGNING_KEY_FILE=str(not_a_key))
    code, _, err = await run_cli(env, "serve")
    assert code == 2
    assert "storage.signing_key_file" in err
    assert "Traceback" not in err


async def test_the_task_key_is_generated_once_and_its_public_half_printed(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data")
    code, first, err = await run_cli(env, "keys", "task-public-key")
    assert code == 0, err
    code, second, _ = await run_cli(env, "keys", "task-public-key")
    assert first == second
    assert "PRIVATE" not in first
    key_file = tmp_path / "data" / "secrets" / "task_signing_key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = task_protocol.load_private_key(key_file.read_bytes())
    assert task_protocol.public_pem(private.public_key()).decode() == first
