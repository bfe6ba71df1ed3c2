"""Unpacking a downloaded package without trusting its member list: a signed package is
vouched for by its publisher, but a mistake (or a stolen key) must still not write outside the
version's directory or create devices on the node."""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

MAX_UNPACKED = 1 << 30  # bytes: far above any package, far below a full disk
MAX_MEMBERS = 100_000


class UnsafePackage(ValueError):
    """The archive holds something that must not be unpacked (the message names it)."""


def extract(archive: Path, target: Path) -> None:
    """Unpack the tar.gz `archive` into the new directory `target`; UnsafePackage names the
    first member that is absolute, climbs out with `..`, links outside, or is not a plain
    file, directory or link."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            check(members)
            target.mkdir(mode=0o755)
            # The standard library's own "data" filter refuses the same things: a second
            # opinion, should a case slip past ours.
            tar.extractall(target, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafePackage(f"the package is not a readable tar.gz: {exc}") from exc


def check(members: list[tarfile.TarInfo]) -> None:
    if len(members) > MAX_MEMBERS:
        raise UnsafePackage(f"the package has more than {MAX_MEMBERS} members")
    total = 0
    for member in members:
        _check_name(member.name)
        if member.issym():
            _check_link(member.name, member.linkname)
        elif member.islnk():
            _check_name(member.linkname)
        elif not (member.isfile() or member.isdir()):
            raise UnsafePackage(f"{member.name!r} is a device, fifo or other special file")
        total += member.size
        if total > MAX_UNPACKED:
            raise UnsafePackage(f"the package unpacks to more than {MAX_UNPACKED} bytes")


def _check_name(name: str) -> None:
    if name.startswith("/"):
        raise UnsafePackage(f"{name!r} is an absolute path")
    if ".." in name.split("/"):
        raise UnsafePackage(f"{name!r} climbs out of the package with '..'")
    if "\x00" in name:
        raise UnsafePackage(f"{name!r} is not a usable name")


def _check_link(name: str, link: str) -> None:
    if link.startswith("/"):
        raise UnsafePackage(f"{name!r} links to the absolute path {link!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafePackage(f"{name!r} links outside the package ({link!r})")
