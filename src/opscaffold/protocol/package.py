"""The package format: what a `{component}-{version}-{os}-{arch}.tar.gz` holds.

    package.json          PackageInfo: format, component, version, entry
    bin/<component>       the entry point, run with the daemon's own Python
    lib/opscaffold/...    the component's code; the entry point puts lib/ on PYTHONPATH, so
                          the package runs its own code with the third-party libraries
                          installed beside the daemon

The signed manifest (protocol/manifest.py) travels beside the file, not inside it: it pins the
file's bytes, so it cannot be part of them.
"""

from __future__ import annotations

import platform
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from opscaffold.protocol.manifest import Component
from opscaffold.protocol.versions import Version

FORMAT = 1
INFO_FILE = "package.json"
LIB_DIR = "lib"
# Inside lib/: a packaged installation reports this file's version, not the wheel's.
VERSION_FILE = "opscaffold/daemon/PACKAGE_VERSION"
# platform.machine() spellings → the names versions are published under (spec §3.2.6).
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class PackageInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1]
    component: Component
    version: str
    entry: str  # relative path of the entry point, e.g. bin/agent

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        Version(value)
        return value

    @field_validator("entry")
    @classmethod
    def _entry(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError("must be a plain relative path inside the package")
        return value


def file_name(component: str, version: str, os_name: str, arch: str) -> str:
    return f"{component}-{version}-{os_name}-{arch}.tar.gz"


def host_os() -> str:
    return platform.system().lower()


def host_arch() -> str:
    machine = platform.machine().lower()
    try:
        return _ARCH[machine]
    except KeyError:
        raise ValueError(f"no package architecture for machine {machine!r}") from None
