#!/usr/bin/env bash
# Installs everything and runs the embedded service (SQLite, local artifacts, no broker server).
# Extra arguments go to `tass up`, e.g. scripts/run.sh --port 8080 --data-dir ./tass-data
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh cpu
exec .venv/bin/tass up "$@"
