#!/usr/bin/env bash
# The build steps, one place for all who build: `make install` (developers and CI) and the
# Dockerfile run these same steps, so the image is built the way CI builds and tests.
#
#   bash scripts/build.sh python          .venv with everything: all extras, dev tools, editable
#   bash scripts/build.sh python --image  the Manager only: no dev tools, installed (not editable)
#   bash scripts/build.sh web-deps        the web console's npm packages (web/package-lock.json)
#   bash scripts/build.sh web             build the console into src/opscaffold/manager/ui/static/
#
# Environment: PYTHON (the interpreter the venv is made from, default python3) and VENV (where
# the venv goes, default .venv). Nothing is downloaded but the locked packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# uv never fetches an interpreter of its own, and syncs into $VENV.
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=$VENV

python_env() {
  local mode=${1:-dev}
  test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
  test -x "$VENV/bin/uv" || "$VENV/bin/python" -m pip install --quiet "uv>=0.5,<1"
  case $mode in
    dev) "$VENV/bin/uv" sync --frozen --all-extras --python "$VENV/bin/python" ;;
    # The built console must be in place first: the wheel takes it from ui/static/.
    --image)
      test -f src/opscaffold/manager/ui/static/index.html \
        || { echo "build.sh: build the web console first (build.sh web)" >&2; exit 1; }
      "$VENV/bin/uv" sync --frozen --no-dev --extra manager --no-editable \
        --python "$VENV/bin/python"
      ;;
    *) echo "build.sh python: unknown option $mode (--image or none)" >&2; exit 2 ;;
  esac
}

case ${1:-} in
  python) python_env "${2:-dev}" ;;
  web-deps) (cd web && npm ci --no-audit --no-fund) ;;
  web) (cd web && npm run build) ;;
  *) echo "usage: build.sh python [--image] | web-deps | web" >&2; exit 2 ;;
esac
