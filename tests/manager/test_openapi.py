"""The OpenAPI document is good enough to generate a typed client from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from opscaffold.manager.app import create_app
from opscaffold.manager.config import load_settings

COMMITTED = Path(__file__).parents[2] / "api" / "openapi.yaml"


def _document(tmp_path: Path) -> dict[str, Any]:
    settings = load_settings(None, {"OPS_DATA_DIR": str(tmp_path)})
    document: dict[str, Any] = create_app(settings, build_only=True).openapi()
    return document


def test_committed_document_is_current(tmp_path: Path) -> None:
    committed = yaml.safe_load(COMMITTED.read_text())
    assert committed == _document(tmp_path), "api/openapi.yaml is stale: run 'make openapi'"


def test_operations_have_stable_ids_and_declared_errors(tmp_path: Path) -> None:
    document = _document(tmp_path)
    ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert "422" not in operation["responses"], (method, path)
            if path.startswith("/api/v1/"):
                for status in ("400", "401", "403", "429", "500"):
                    ref = operation["responses"][status]["content"]["application/json"]["schema"]
                    assert ref == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert len(ids) == len(set(ids))
    assert "login" in ids
    assert "list_users" in ids


def test_schemas_have_readable_names(tmp_path: Path) -> None:
    schemas = _document(tmp_path)["components"]["schemas"]
    assert "UserReadPageEnvelope" in schemas
    assert not [name for name in schemas if "[" in name or name.endswith("_")]


def test_protected_operations_declare_bearer_auth(tmp_path: Path) -> None:
    paths = _document(tmp_path)["paths"]
    assert paths["/api/v1/system/users"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/api/v1/auth/login"]["post"]


GENERATE = """
import importlib, json, sys, tempfile
importlib.import_module(sys.argv[1])
from opscaffold.manager.app import create_app
from opscaffold.manager.config import load_settings
settings = load_settings(None, {"OPS_DATA_DIR": tempfile.mkdtemp()})
print(json.dumps(create_app(settings, build_only=True).openapi()))
"""


def test_the_document_does_not_depend_on_which_module_is_imported_first() -> None:
    """typing caches equal Literals: two spellings of one set in another order would make the
    document (and `make check-generated`) depend on import order."""
    documents = {
        first: subprocess.run(
            [sys.executable, "-c", GENERATE, first],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for first in (
            "opscaffold.manager.task.schemas",
            "opscaffold.manager.alert.schemas",
            "opscaffold.manager.node.states",
        )
    }
    assert len(set(documents.values())) == 1, list(documents)
