#!/usr/bin/env bash
# Installs everything and runs the checks, the docs build and the whole test suite.
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`: each run makes databases of its
# own there) and the redis-server and PostgreSQL server programs (the tests start private Redis
# servers and throwaway clusters; the machine's Redis is not used). .ci/run starts PostgreSQL when
# it is down. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh cpu,dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
scripts/typecheck.sh
scripts/check-chart.sh
# the documentation site (docs/, mkdocs.yml) into build/site: a broken link, anchor or page fails
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict
.venv/bin/python -m pytest "$@"
