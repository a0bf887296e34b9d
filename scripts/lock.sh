#!/usr/bin/env bash
# Regenerate deploy/constraints.txt: the exact version of every package a full install of strseq
# resolves to today (torch first, then every extra), for reproducible installs:
#   pip install torch==2.13.0 && pip install ".[flows]" -c deploy/constraints.txt
# scripts/setup.sh installs with it. Run after changing a dependency in pyproject.toml (about
# 5 minutes: a fresh venv, from the package registry), then run the tests and commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check torch==2.13.0
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check ".[train,flows,dask,demo,bench,test,parquet]"
{
  echo "# Every package a full install of strseq resolved to on $(date -u +%Y-%m-%d) with $("$tmp/venv/bin/python" -V)."
  echo "# Written by scripts/lock.sh; use with pip's -c (constraints pin versions, they install nothing)."
  # torch's CPU wheel carries a local label (+cpu); the plain version matches it on any index
  "$tmp/venv/bin/pip" freeze --exclude-editable --disable-pip-version-check | grep -v -E '^strseq( @|==)' \
    | sed -E 's/^torch==([0-9.]+)\+.*/torch==\1/'
} > deploy/constraints.txt.tmp
mv deploy/constraints.txt.tmp deploy/constraints.txt
echo "wrote deploy/constraints.txt"
