#!/usr/bin/env bash
# The main job: installs the Python side and runs the embedded demo (no Kafka or PostgreSQL
# needed). Extra arguments go to `certrotate demo` (e.g. --exit, --json).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
exec .venv/bin/certrotate demo "$@"
