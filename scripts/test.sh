#!/usr/bin/env bash
# Set up .venv (if needed) and run the test suite. Extra arguments go to pytest: --long adds the
# tests marked `long` (a Prefect server and worker, kill -9 of real commands, every crash point and
# every hostile case of the sampled families: docs/testing.md, "The quick suite and --long").
# The tests run on $STRSEQ_TEST_WORKERS processes (default 2, one per core; pytest-xdist, whole
# files per process, so a module's fixtures are built once); STRSEQ_TEST_WORKERS=0 runs them in
# this process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The review page's browser test drives Debian's Chromium with Playwright (no browser download):
# installed here when missing and we may (root, apt-get); elsewhere that one test skips (fails under CI).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser test (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: no chromium here: the review page's browser test will skip (sudo apt-get install chromium)"
  fi
fi
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
workers="${STRSEQ_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" != 0 ]; then parallel=(-n "$workers" --dist loadfile); fi
exec .venv/bin/python -m pytest "${parallel[@]}" --durations=30 "$@"
