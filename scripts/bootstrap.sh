#!/usr/bin/env bash
# Installs the Python side on a fresh machine: uv, then the locked workspace into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_PYTHON_DOWNLOADS=never  # only registries are reachable: use the machine's Python 3.11
if ! command -v uv >/dev/null 2>&1; then
    echo "bootstrap: installing uv from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
uv sync --quiet --frozen --python 3.11
