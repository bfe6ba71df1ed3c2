"""The `ops-manager keys` commands: the Manager's signing key, trusted keys, offline signing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

import typer
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from opscaffold.manager.config import ConfigError, Settings
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.files import PRIVATE_FILE
from opscaffold.manager.version.keys import KeyRing, ensure_key_file, signing_key_path
from opscaffold.protocol import manifest as signing
from opscaffold.protocol.manifest import Manifest, timestamp

CHUNK = 1024 * 1024


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def generate(settings: Settings, out: Path | None) -> str:
    """Create the Manager's signing key (or, with `out`, a key for an offline signer); never
    overwrites a key. Returns the new key's fingerprint."""
    path = out if out is not None else signing_key_path(settings)
    if out is None and settings.storage.signing_key_file is None:
        if not ensure_key_file(path):
            raise _fail(f"{path} exists already; a key is never replaced in place")
    else:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:
            raise _fail(f"{path} exists already; a key is never replaced in place") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(signing.private_pem(signing.generate_key()))
    return signing.fingerprint(_private(path).public_key())


def list_lines(settings: Settings) -> list[str]:
    ring = _ring(settings)
    return [f"{key.fingerprint}  {key.source}" for key in ring.trusted]


def export_public(settings: Settings, key: Path | None) -> str:
    private = _private(key) if key is not None else _ring(settings).signing_key
    return signing.public_pem(private.public_key()).decode()


def sign(
    settings: Settings,
    file: Path,
    *,
    component: str,
    version: str,
    os_name: str,
    arch: str,
    key: Path | None,
    created_at: datetime | None,
) -> str:
    """The manifest of `file` and its base64 signature, as JSON: what POST /versions takes
    as `created_at` and `signature` beside the same file."""
    size, sha256 = _hash(file)
    try:
        manifest = Manifest(
            component=component,
            version=version,
            os=os_name,
            arch=arch,
            size=size,
            sha256=sha256,
            created_at=timestamp(created_at or utcnow()),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _fail(f"--{first['loc'][0]}: {first['msg']}") from exc
    private = _private(key) if key is not None else _ring(settings).signing_key
    signature = base64.b64encode(signing.sign(manifest, private)).decode()
    return json.dumps({"manifest": manifest.model_dump(), "signature": signature}, indent=2)


def _ring(settings: Settings) -> KeyRing:
    try:
        return KeyRing.load(settings, create=False)
    except ConfigError as exc:
        problem = exc.problems[0]
        if (
            problem.startswith("storage.signing_key_file")
            and settings.storage.signing_key_file is None
        ):
            problem += " (`ops-manager keys generate` makes one)"
        raise _fail(problem) from exc


def _private(path: Path) -> rsa.RSAPrivateKey:
    try:
        return signing.load_private_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise _fail(f"cannot use the key {path}: {exc}") from exc


def _hash(file: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    try:
        with file.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc}") from exc
    return size, digest.hexdigest()
