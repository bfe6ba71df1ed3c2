# Ops Scaffold — every check and task has one entry point here; CI calls the same targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run demo test lint format typecheck proto openapi initdb migrate check-generated pytest package clean

$(STAMP): pyproject.toml uv.lock scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv>=0.5,<1"
	$(BIN)/uv sync --frozen --all-extras --python $(BIN)/python
	touch $(STAMP)

install: $(STAMP)  ## create .venv with everything the project needs

run: install  ## start the Manager on the embedded default (SQLite, HTTP :8080, gRPC :9090)
	$(BIN)/ops-manager serve

demo: install  ## the Manager plus a real daemon and a small simulated fleet
	bash scripts/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

proto: install  ## regenerate the gRPC stubs and .pyi types from proto/
	$(BIN)/python scripts/gen_proto.py

openapi: install  ## regenerate api/openapi.yaml
	$(BIN)/ops-manager openapi --output api/openapi.yaml

initdb: install  ## regenerate scripts/init_db.sql (MySQL DDL of the migrations)
	$(BIN)/ops-manager migrate --sql > scripts/init_db.sql

migrate: install  ## migrate the configured database (OPS_CONFIG or --config via ARGS)
	$(BIN)/ops-manager migrate $(ARGS)

check-generated: install  ## generated files must match what the sources generate
	@tmp=$$(mktemp -d); \
	$(BIN)/ops-manager openapi --output $$tmp/openapi.yaml; \
	$(BIN)/ops-manager migrate --sql > $$tmp/init_db.sql; \
	mkdir -p $$tmp/protocol && $(BIN)/python scripts/gen_proto.py $$tmp/protocol >/dev/null 2>&1; \
	diff -u api/openapi.yaml $$tmp/openapi.yaml && diff -u scripts/init_db.sql $$tmp/init_db.sql \
	  && diff -ru -x __pycache__ src/opscaffold/protocol/ops $$tmp/protocol/ops \
	  || { echo "generated files are stale: run 'make proto openapi initdb'"; exit 1; }

package: install  ## dist/packages/{agent,daemon}-VERSION-OS-ARCH.tar.gz (VERSION=x.y.z, default the project's)
	$(BIN)/python scripts/package.py $(if $(VERSION),--version $(VERSION),--version $$($(BIN)/python -c 'from importlib.metadata import version; print(version("opscaffold"))'))

pytest: install
	$(BIN)/pytest $(ARGS)

test: install lint typecheck check-generated  ## every check: lint, types, generated files, tests
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
