#!/usr/bin/env bash
# The test command: static checks (ruff, mypy), then pytest with any arguments given. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
start=$SECONDS
step() {
    local name=$1 began=$SECONDS
    shift
    "$@"
    echo "==> $name: $((SECONDS - began)) s"
}
step ruff "$py" -m ruff check
step mypy "$py" -m mypy
step pytest "$py" -m pytest "$@"
echo "==> total: $((SECONDS - start)) s"
