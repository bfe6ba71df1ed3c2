"""The daemon and the simulator install without the Manager: they never import it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import opscaffold

SRC = Path(opscaffold.__file__).parent
MANAGER_ONLY = ("opscaffold.manager", "fastapi", "sqlalchemy", "uvicorn", "redis", "structlog")


def imported_modules(source: str, package: list[str]) -> set[str]:
    """Every module `source` (a module of `package`) imports, relative imports resolved,
    `from a import b` also as a.b."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def package_of(path: Path) -> list[str]:
    return ["opscaffold", *path.parent.relative_to(SRC).parts]


def test_the_import_scan_sees_every_spelling() -> None:
    source = "from ...manager import app\nfrom opscaffold import manager\nimport fastapi\n"
    names = imported_modules(source, ["opscaffold", "daemon", "agent"])
    assert {"opscaffold.manager.app", "opscaffold.manager", "fastapi"} <= names


@pytest.mark.parametrize("package", ["daemon", "fleet"])
def test_no_source_file_imports_the_manager(package: str) -> None:
    offenders = {
        f"{path.relative_to(SRC)}: {name}"
        for path in (SRC / package).rglob("*.py")
        for name in imported_modules(path.read_text(), package_of(path))
        if name.split(".")[0] in MANAGER_ONLY or name.startswith("opscaffold.manager")
    }
    assert not offenders


@pytest.mark.parametrize("module", ["opscaffold.daemon.cli", "opscaffold.fleet.cli"])
def test_nothing_of_the_manager_is_loaded_at_run_time(module: str) -> None:
    code = (
        f"import sys, {module}; "
        f"print(sorted(m for m in sys.modules if m.startswith({MANAGER_ONLY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
