#!/usr/bin/env bash
# Creates .venv (if needed) and installs tass with the given extras (default: cpu).
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh cpu,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
