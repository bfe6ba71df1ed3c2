"""The public keys this node trusts for packages: copied into its state directory when the
daemon is installed (`--trusted-key`, repeatable), read from there only. The Manager cannot
add a key: trust that arrived over the wire would be trust in whoever holds the wire."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from opscaffold.daemon.state import private_dir, write_private
from opscaffold.protocol.manifest import fingerprint, load_public_key, public_pem

KEYS_DIR = "trusted-keys"


class TrustedKeyError(ValueError):
    """A key file that is not an RSA public key in PEM."""


class TrustStore:
    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / KEYS_DIR

    def install(self, files: Iterable[Path]) -> list[str]:
        """Copy each PEM public key in (named by fingerprint, mode 0600; the directory 0700),
        keeping those already trusted, so a new key can be added before the old one goes.
        Returns the fingerprints of `files`."""
        keys = [_read(file) for file in files]  # all readable, or nothing is copied
        private_dir(self.directory)
        names = []
        for key in keys:
            name = fingerprint(key)
            write_private(self.directory / f"{name}.pem", public_pem(key))
            names.append(name)
        return names

    def public_keys(self) -> list[rsa.RSAPublicKey]:
        """The trusted keys; none when nothing was installed."""
        if not self.directory.is_dir():
            return []
        return [_read(file) for file in sorted(self.directory.glob("*.pem"))]


def _read(file: Path) -> rsa.RSAPublicKey:
    try:
        return load_public_key(file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TrustedKeyError(f"trusted key {file}: {exc}") from exc
