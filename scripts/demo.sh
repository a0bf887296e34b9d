#!/usr/bin/env bash
# Set up .venv (if needed), then run `strseq demo`: a dirty customers table on SQLite, the
# retraining flow for names, birth dates and phone numbers (publishing to a registry), and the
# cleaning flow on every column, in Prefect's local mode. Everything is written to demo-output/
# (replaced on each run). Extra arguments go to `strseq demo` (see `strseq demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
exec .venv/bin/strseq demo --out demo-output --force "$@"
