"""Signed package manifests: what the Manager (or an offline signer) vouches for, and what a
daemon checks before it installs anything.

A manifest names the package (component, version, os, arch) and pins its bytes (size,
sha256). Its signature is RSA PKCS#1 v1.5 over SHA-256 of the manifest's canonical JSON
(sorted keys, no spaces, UTF-8), as the design's §6.3 signs with RSA and SHA-256; signing the
manifest rather than the file's hash alone also binds the name and version, so a genuine
package cannot be passed off as another version or component.

A daemon trusts only public keys it was installed with; several may be trusted at once so a
key can be rotated. A key is named by its fingerprint: SHA-256 of its DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from opscaffold.protocol.versions import Version

Component = Literal["daemon", "agent"]
KEY_BITS = 3072
OS_NAMES = frozenset({"linux", "darwin", "windows"})
ARCH_NAMES = frozenset({"amd64", "arm64", "386", "arm"})


def _version(value: str) -> str:
    Version(value)  # raises InvalidVersion, a ValueError: pydantic names the field
    return value


def _one_of(names: frozenset[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {sorted(names)}")
        return value

    return check


# What a package's fields may hold, wherever a package is named (manifests, uploads).
VersionText = Annotated[str, AfterValidator(_version)]
OsName = Annotated[str, AfterValidator(_one_of(OS_NAMES))]
ArchName = Annotated[str, AfterValidator(_one_of(ARCH_NAMES))]


class BadSignature(Exception):
    """The signature is not one of a trusted key over this manifest."""


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    component: Component
    version: VersionText
    os: OsName
    arch: ArchName
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: str = Field(description="RFC 3339, UTC, whole seconds")

    def canonical(self) -> bytes:
        """The exact bytes a signature covers."""
        return json.dumps(
            self.model_dump(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def timestamp(at: datetime) -> str:
    """A manifest's created_at: RFC 3339 in UTC, whole seconds."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- keys ---------------------------------------------------------------------------------
def generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def load_public_keys(paths: Iterable[Path]) -> list[rsa.RSAPublicKey]:
    return [load_public_key(Path(path).read_bytes()) for path in paths]


def fingerprint(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


# -- signing ------------------------------------------------------------------------------
def sign(manifest: Manifest, key: rsa.RSAPrivateKey) -> bytes:
    return key.sign(manifest.canonical(), padding.PKCS1v15(), hashes.SHA256())


def verify(manifest: Manifest, signature: bytes, trusted: Iterable[rsa.RSAPublicKey]) -> str:
    """The fingerprint of the trusted key that made `signature`; BadSignature if none did."""
    data = manifest.canonical()
    for key in trusted:
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return fingerprint(key)
    raise BadSignature("the package is not signed by a trusted key")
