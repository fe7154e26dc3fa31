#!/usr/bin/env bash
# Every test, from a fresh machine: Python packages, PostgreSQL and Kafka, Chromium (for the
# dashboard's browser tests), lint, types, tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -m unit).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
deploy/local/up.sh
scripts/install-browser.sh

echo "== ruff" && .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy" && .venv/bin/mypy .
echo "== pytest"
exec .venv/bin/pytest "$@"
