# Ops Scaffold — every check and task has one entry point here; CI calls the same targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run demo test lint format typecheck proto openapi initdb migrate check-generated pytest package clean web web-test web-client config-reference daemon-requirements
# The web console: built by Vite into the Python package, so the Manager needs no Node.js.
WEB_DEPS := web/node_modules/.ci-installed
# What a host needs beside the daemon's package (docs/deployment.md): pinned, with hashes.
DAEMON_REQUIREMENTS := $(BIN)/uv export --quiet --frozen --no-dev --extra daemon --no-emit-project \
  --no-header --format requirements-txt
WEB_BUILD := src/opscaffold/manager/ui/static/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
  web/vite.config.ts web/tsconfig.json web/package.json

# The build steps are scripts/build.sh's, which the Dockerfile runs too.
$(STAMP): pyproject.toml uv.lock scripts/install-system-deps.sh scripts/build.sh
	bash scripts/install-system-deps.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/build.sh python
	touch $(STAMP)

$(WEB_DEPS): web/package-lock.json scripts/install-system-deps.sh scripts/build.sh | $(STAMP)
	bash scripts/build.sh web-deps
	touch $(WEB_DEPS)

$(WEB_BUILD): $(WEB_DEPS) $(WEB_SOURCES)
	bash scripts/build.sh web

install: $(STAMP) $(WEB_BUILD)  ## create .venv with everything the project needs, build the web console

web: $(WEB_BUILD)  ## build the web console into src/opscaffold/manager/ui/static/

web-test: $(WEB_DEPS)  ## the web console's type check and unit tests (Vitest)
	cd web && npm run typecheck && npm test

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

openapi: install  ## regenerate api/openapi.yaml and the web console's typed client
	$(BIN)/ops-manager openapi --output api/openapi.yaml
	$(MAKE) web-client

web-client: $(WEB_DEPS)  ## regenerate web/src/api/generated/ from api/openapi.yaml
	cd web && npm run gen:api

initdb: install  ## regenerate scripts/init_db.sql (MySQL DDL of the migrations)
	$(BIN)/ops-manager migrate --sql > scripts/init_db.sql

config-reference: install  ## regenerate docs/configuration.md from the Settings object
	$(BIN)/ops-manager config-reference --output docs/configuration.md

daemon-requirements: install  ## regenerate deploy/daemon/requirements.txt (the daemon's libraries, from uv.lock)
	$(DAEMON_REQUIREMENTS) > deploy/daemon/requirements.txt

migrate: install  ## migrate the configured database (OPS_CONFIG or --config via ARGS)
	$(BIN)/ops-manager migrate $(ARGS)

check-generated: install $(WEB_DEPS)  ## generated files must match what the sources generate
	@tmp=$$(mktemp -d); \
	$(BIN)/ops-manager openapi --output $$tmp/openapi.yaml; \
	$(BIN)/ops-manager migrate --sql > $$tmp/init_db.sql; \
	mkdir -p $$tmp/protocol && $(BIN)/python scripts/gen_proto.py $$tmp/protocol >/dev/null 2>&1; \
	(cd web && npx --no-install openapi-typescript $$tmp/openapi.yaml -o $$tmp/schema.ts >/dev/null 2>&1); \
	$(BIN)/ops-manager config-reference --output $$tmp/configuration.md; \
	$(DAEMON_REQUIREMENTS) > $$tmp/requirements.txt; \
	diff -u api/openapi.yaml $$tmp/openapi.yaml && diff -u scripts/init_db.sql $$tmp/init_db.sql \
	  && diff -ru -x __pycache__ src/opscaffold/protocol/ops $$tmp/protocol/ops \
	  && diff -u web/src/api/generated/schema.ts $$tmp/schema.ts \
	  && diff -u docs/configuration.md $$tmp/configuration.md \
	  && diff -u deploy/daemon/requirements.txt $$tmp/requirements.txt \
	  || { echo "generated files are stale: run 'make proto openapi initdb web-client config-reference daemon-requirements'"; exit 1; }

package: install  ## dist/packages/{agent,daemon}-VERSION-OS-ARCH.tar.gz (VERSION=x.y.z, default the project's)
	$(BIN)/python scripts/package.py $(if $(VERSION),--version $(VERSION),--version $$($(BIN)/python -c 'from importlib.metadata import version; print(version("opscaffold"))'))

pytest: install
	$(BIN)/pytest $(ARGS)

test: install lint typecheck check-generated web-test  ## every check: lint, types, generated files, web unit tests, pytest (API, e2e, browser)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache web/node_modules src/opscaffold/manager/ui/static
