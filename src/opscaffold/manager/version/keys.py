"""The keys of package signatures: the Manager's own signing key and the public keys it trusts.

The signing key is kept like the JWT secrets: named by `storage.signing_key_file`, or generated
at first start into data_dir/secrets/signing_key.pem (mode 0600). Signatures made offline are
checked against the trusted keys: the Manager's own public key plus `storage.trusted_keys`.
Trust is only ever configured here; nothing the Manager sends makes a daemon trust a key.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from opscaffold.manager.config import ConfigError, Settings
from opscaffold.manager.kit.files import PRIVATE_FILE, private_dir
from opscaffold.protocol import manifest as signing
from opscaffold.protocol.manifest import Manifest

GENERATED_NAME = "signing_key.pem"


@dataclass(frozen=True, slots=True)
class TrustedKey:
    fingerprint: str
    source: str  # where it came from, for `keys list`
    key: rsa.RSAPublicKey


class KeyRing:
    def __init__(self, signing_key: rsa.RSAPrivateKey, others: list[TrustedKey]) -> None:
        self.signing_key = signing_key
        own = signing_key.public_key()
        self.fingerprint = signing.fingerprint(own)
        self.trusted = [TrustedKey(self.fingerprint, "manager signing key", own), *others]

    @classmethod
    def load(cls, settings: Settings, *, create: bool = True) -> KeyRing:
        """The configured keys; the Manager's key is generated first if none is configured and
        none was generated before (unless `create` is false). A key that cannot be read stops
        start-up with a message naming its setting."""
        path = signing_key_path(settings)
        configured = settings.storage.signing_key_file is not None
        if not configured and create:
            ensure_key_file(path)
        try:
            own = signing.load_private_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError([f"storage.signing_key_file: cannot use {path}: {exc}"]) from exc
        others = []
        for index, file in enumerate(settings.storage.trusted_keys):
            try:
                key = signing.load_public_key(Path(file).read_bytes())
            except (OSError, ValueError, TypeError) as exc:
                problem = f"storage.trusted_keys.{index}: cannot use {file}: {exc}"
                raise ConfigError([problem]) from exc
            others.append(TrustedKey(signing.fingerprint(key), str(file), key))
        return cls(own, others)

    def sign(self, manifest: Manifest) -> bytes:
        return signing.sign(manifest, self.signing_key)

    def verify(self, manifest: Manifest, signature: bytes) -> str:
        """The fingerprint of the trusted key that made `signature` (BadSignature if none)."""
        return signing.verify(manifest, signature, (t.key for t in self.trusted))


def signing_key_path(settings: Settings) -> Path:
    configured = settings.storage.signing_key_file
    return configured if configured is not None else settings.data_dir / "secrets" / GENERATED_NAME


def ensure_key_file(path: Path) -> bool:
    """Write a new private key to `path` unless a file is there; True when one was written.

    The key is written whole to a private temporary file and linked into place, so a second
    process starting at the same time reads either no file or a complete one, never half."""
    if path.exists():
        return False
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(signing.private_pem(signing.generate_key()))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)
