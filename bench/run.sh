#!/usr/bin/env bash
# The one command behind `make bench`: bash bench/run.sh [--scale small|default|large] [--runs N] ...
# Creates (or reuses) Feast's own virtualenv in bench/.venv-feast, then runs bench/run.py with the
# project's venv. Feast's pins never touch the project's environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FEAST_VERSION="0.67.0"
FEAST_VENV="$ROOT/bench/.venv-feast"
PROJECT_PY="$ROOT/.venv/bin/python"

if [[ ! -x "$PROJECT_PY" ]]; then
  echo "no project venv at $ROOT/.venv: create it and pip install -e '.[dev]' first" >&2
  exit 1
fi
# bash bench/run.sh late-data [...]: the late-data row (bench/late_data.py), no Feast needed
if [[ ${1:-} == late-data ]]; then shift; cd "$ROOT"; exec "$PROJECT_PY" -m bench.late_data "$@"; fi

if ! "$FEAST_VENV/bin/python" -c "import feast, sys; sys.exit(feast.__version__ != '$FEAST_VERSION')" 2>/dev/null; then
  echo "setting up Feast $FEAST_VERSION in $FEAST_VENV (once)" >&2
  BASE_PY="$(command -v python3.11 || command -v python3)"
  "$BASE_PY" -m venv "$FEAST_VENV"
  "$FEAST_VENV/bin/pip" install --quiet --upgrade pip
  "$FEAST_VENV/bin/pip" install --quiet "feast[redis]==$FEAST_VERSION"
fi

cd "$ROOT"
exec "$PROJECT_PY" -m bench.run "$@"
