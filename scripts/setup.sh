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

# The dashboard's browser test (dev extra) drives Debian's chromium; Playwright downloads none.
# benchmarks/load.py drives the service with wrk (a C load generator) when it is installed.
if [[ ",${extras}," == *",dev,"* ]] && command -v apt-get >/dev/null &&
  { [ ! -x /usr/bin/chromium ] || ! command -v wrk >/dev/null; }; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium wrk; } ||
    echo "warning: could not install chromium and wrk; the dashboard browser test will fail" >&2
fi
