"""Build the daemon's and the agent's packages: reproducible tar.gz files in the format of
`opscaffold.protocol.package`.

    python scripts/package.py --version 1.2.0 [--component agent] [--output dist/packages]

The same sources and version give the same bytes: members sorted, owners, modes and times
fixed, gzip without a name or a time.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from opscaffold.protocol.package import (
    FORMAT,
    INFO_FILE,
    LIB_DIR,
    VERSION_FILE,
    PackageInfo,
    file_name,
    host_arch,
    host_os,
)
from opscaffold.protocol.versions import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
MTIME = 946_684_800  # 2000-01-01: a fixed time, so equal sources give equal bytes
# What each component's code needs from the source tree, and the module its entry point runs.
PAYLOAD = {
    "agent": (
        ["opscaffold/__init__.py", "opscaffold/daemon/__init__.py", "opscaffold/daemon/agent"],
        "opscaffold.daemon.agent",
    ),
    "daemon": (["opscaffold/__init__.py", "opscaffold/daemon"], "opscaffold.daemon"),
}
COMMON = ["opscaffold/protocol"]
ENTRY = '''#!/usr/bin/env python3
"""Runs this package's {component}: its own code (lib/ on PYTHONPATH) with the Python that
starts this file and the libraries installed beside it."""
import os
import sys

lib = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "lib")
os.execve(
    sys.executable,
    [sys.executable, "-m", "{module}", *sys.argv[1:]],
    dict(os.environ, PYTHONPATH=lib),
)
'''


def build(
    component: str, version: str, source: Path, output: Path, os_name: str, arch: str
) -> Path:
    paths, module = PAYLOAD[component]
    entry = f"bin/{component}"
    info = PackageInfo.model_validate(
        {"format": FORMAT, "component": component, "version": version, "entry": entry}
    )
    files: dict[str, tuple[bytes, int]] = {
        INFO_FILE: (info.model_dump_json(indent=2).encode() + b"\n", 0o644),
        entry: (ENTRY.format(component=component, module=module).encode(), 0o755),
        f"{LIB_DIR}/{VERSION_FILE}": (f"{version}\n".encode(), 0o644),
    }
    for path in [*paths, *COMMON]:
        for file in _sources(source / path):
            files[f"{LIB_DIR}/{file.relative_to(source).as_posix()}"] = (file.read_bytes(), 0o644)
    output.mkdir(parents=True, exist_ok=True)
    target = output / file_name(component, version, os_name, arch)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(_tar_gz(files))
    temporary.replace(target)
    return target


def _sources(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise SystemExit(f"package.py: {path} does not exist")
    for file in sorted(path.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
            yield file


def _tar_gz(files: dict[str, tuple[bytes, int]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(_directories(files)):
            tar.addfile(_member(directory, tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(files):
            data, mode = files[name]
            tar.addfile(_member(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _directories(files: dict[str, tuple[bytes, int]]) -> set[str]:
    found: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def _member(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode = mode
    member.size = size
    member.mtime = MTIME
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _version(text: str) -> str:
    try:
        return Version(text).text
    except InvalidVersion as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version", required=True, type=_version, help="the packages' version, e.g. 1.2.0"
    )
    parser.add_argument(
        "--component", choices=sorted(PAYLOAD), action="append", help="default: both"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "packages")
    parser.add_argument("--source", type=Path, default=ROOT / "src", help="holds opscaffold/")
    parser.add_argument("--os", dest="os_name", default=None, help="default: this machine's")
    parser.add_argument("--arch", default=None, help="default: this machine's")
    args = parser.parse_args(argv)
    for component in args.component or sorted(PAYLOAD):
        path = build(
            component,
            args.version,
            args.source,
            args.output,
            args.os_name or host_os(),
            args.arch or host_arch(),
        )
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
