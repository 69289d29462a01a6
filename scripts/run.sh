#!/usr/bin/env bash
# Installs everything and runs the embedded service (SQLite, local artifacts, no broker server).
# Extra arguments go to `tass up`, e.g. scripts/run.sh --port 8080 --data-dir ./tass-data
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh cpu
# The CLI lives in .venv/bin, which is not on PATH unless the venv is activated: say how to reach it.
venv_bin="$(pwd)/.venv/bin"
if [ "$(command -v tass || true)" != "${venv_bin}/tass" ]; then
  echo "the tass CLI is ${venv_bin}/tass; in another shell either run it by that path or" \
    "put it on PATH with: source $(pwd)/.venv/bin/activate" >&2
fi
exec .venv/bin/tass up "$@"
