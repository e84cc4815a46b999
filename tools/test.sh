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
# Two workers (pytest-xdist), a file each at a time: the daemon tests mostly wait on processes, timers and the
# broker, and those waits overlap the model tests. More workers than cores would only contend for them.
step pytest "$py" -m pytest --numprocesses 2 --dist loadfile "$@"
echo "==> total: $((SECONDS - start)) s"
