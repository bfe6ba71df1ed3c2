"""The node daemon: registers with the Manager, reports heartbeats and metrics, supervises the
Agent. It depends only on `opscaffold.protocol`, never on the Manager's packages."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version


@functools.cache  # reading the installed metadata parses a file: ~0.5 ms a call
def package_version() -> str:
    try:
        return version("opscaffold")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0+unknown"
