#!/usr/bin/env bash
# Set up .venv (if needed) and run the test suite. Extra arguments go to pytest: --long adds the
# long end-to-end tests (marker `long`: a Prefect server and worker, kill -9 of real commands).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
exec .venv/bin/python -m pytest --durations=30 "$@"
