#!/usr/bin/env bash
# Set up .venv (if needed) and run the test suite. Extra arguments go to pytest: --long adds the
# long end-to-end tests (marker `long`: a Prefect server and worker, kill -9 of real commands).
# The tests run on $STRSEQ_TEST_WORKERS processes (default 2, one per core; pytest-xdist, whole
# files per process, so a module's fixtures are built once); STRSEQ_TEST_WORKERS=0 runs them in
# this process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
workers="${STRSEQ_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" != 0 ]; then parallel=(-n "$workers" --dist loadfile); fi
exec .venv/bin/python -m pytest "${parallel[@]}" --durations=30 "$@"
