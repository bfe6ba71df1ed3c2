"""Shared by the deployment tests: the Settings object seen from the environment."""

from __future__ import annotations

import datetime
import ipaddress
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel

from opscaffold.manager.config import ConfigError, Settings, load_settings
from opscaffold.protocol.ops.daemon import daemon_pb2

GRPC_SERVICES = {
    daemon_pb2.DESCRIPTOR.services_by_name["DaemonService"].full_name,
    "grpc.health.v1.Health",
}
# Read by the CLI (ops-manager --config), not a setting.
CLI_VARIABLES = {"OPS_CONFIG"}


def setting_of(variable: str) -> str | None:
    """The dotted Settings key an OPS_ variable sets, or None when it names none (the
    loader skips such a variable silently, so a typo would go unnoticed)."""
    path = variable.removeprefix("OPS_").lower().split("__")
    model: type[BaseModel] = Settings
    for index, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return None
        section = field.annotation
        is_section = isinstance(section, type) and issubclass(section, BaseModel)
        if index == len(path) - 1:
            return None if is_section else ".".join(path)
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            return None
        model = section
    return None


def load(environ: Mapping[str, str]) -> Settings:
    """Settings as the Manager would load them from this environment (no config file)."""
    try:
        return load_settings(None, environ)
    except ConfigError as exc:  # the message names every key at fault
        raise AssertionError(str(exc)) from None


def image_environment() -> dict[str, str]:
    """The OPS_ variables the Dockerfile's ENV sets: every container of the image has them."""
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    found = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                if name.startswith("OPS_"):
                    found[name] = value
    return found


def self_signed(directory: Path, host: str = "ops.example.com") -> Path:
    """server.crt and server.key in `directory`, for `host` and 127.0.0.1; returns the
    certificate, which is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate = directory / "server.crt"
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: `make install` installs it (install-system-deps.sh)")
    return nginx
