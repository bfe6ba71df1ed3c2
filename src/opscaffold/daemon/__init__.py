"""The node daemon: registers with the Manager, reports heartbeats and metrics, supervises the
Agent. It depends only on `opscaffold.protocol`, never on the Manager's packages."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Written into a built package (protocol/package.py): code run from a package reports the
# package's version, whatever wheel the interpreter also has installed.
PACKAGE_VERSION_FILE = Path(__file__).with_name("PACKAGE_VERSION")


@functools.cache  # reading the installed metadata parses a file: ~0.5 ms a call
def package_version() -> str:
    try:
        return PACKAGE_VERSION_FILE.read_text().strip()
    except FileNotFoundError:
        pass
    try:
        return version("opscaffold")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0+unknown"
