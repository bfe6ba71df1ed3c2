"""Unpacking refuses every member that could write outside the version's directory or
create something other than files, directories and links inside it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from opscaffold.daemon.unpack import UnsafePackage, extract


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    if kind == tarfile.REGTYPE:
        info.size = 4
    return info


def archive(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member("package.json"), io.BytesIO(b"{}  "))
        for info in members:
            tar.addfile(info, io.BytesIO(b"data") if info.isfile() else None)
    return path


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (member("/etc/cron.d/evil"), "absolute path"),
        (member("../evil"), "'..'"),
        (member("lib/../../evil"), "'..'"),
        (member("lib/link", tarfile.SYMTYPE, "/etc/passwd"), "absolute path"),
        (member("lib/link", tarfile.SYMTYPE, "../../outside"), "links outside"),
        (member("hard", tarfile.LNKTYPE, "../outside"), "'..'"),
        (member("hard", tarfile.LNKTYPE, "/etc/passwd"), "absolute path"),
        (member("dev/sda", tarfile.BLKTYPE), "device"),
        (member("dev/null", tarfile.CHRTYPE), "device"),
        (member("pipe", tarfile.FIFOTYPE), "device, fifo"),
    ],
    ids=[
        "absolute",
        "dotdot",
        "nested-dotdot",
        "symlink-absolute",
        "symlink-escaping",
        "hardlink-dotdot",
        "hardlink-absolute",
        "block-device",
        "char-device",
        "fifo",
    ],
)
def test_refuses(tmp_path: Path, bad: tarfile.TarInfo, reason: str) -> None:
    package = archive(tmp_path / "p.tar.gz", bad)
    target = tmp_path / "versions" / "1.0.0"
    target.parent.mkdir()

    with pytest.raises(UnsafePackage, match=reason):
        extract(package, target)

    assert not target.exists()  # checked before anything is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tar.gz", "versions"]


def test_links_inside_the_package_are_kept(tmp_path: Path) -> None:
    package = archive(
        tmp_path / "p.tar.gz",
        member("lib/real.py"),
        member("lib/alias.py", tarfile.SYMTYPE, "real.py"),
        member("bin/up", tarfile.SYMTYPE, "../lib/real.py"),
    )
    target = tmp_path / "v"

    extract(package, target)

    assert (target / "bin/up").read_text() == "data"
    assert (target / "lib/alias.py").resolve() == (target / "lib/real.py").resolve()


def test_a_file_that_is_not_a_tar_gz_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "p.tar.gz"
    package.write_bytes(b"not a package")

    with pytest.raises(UnsafePackage, match=r"not a readable tar\.gz"):
        extract(package, tmp_path / "v")
